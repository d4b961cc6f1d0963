"""The demo model's training text: English prose of the Python 3.11 documentation, as Debian ships it.

Source: the reStructuredText sources in Debian's ``python3.11-doc`` package
(``/usr/share/doc/python3.11/html/_sources``), licensed under the PSF License Agreement (the package's
``copyright`` file and the documentation's ``license`` page: "Python software and documentation are licensed
under the PSF License Agreement"). Install it with ``apt-get install python3.11-doc``.

The slice: every ``*.rst.txt`` of the sections in :data:`SECTIONS` except their ``index`` pages, in sorted path
order; each file is one document. Prose paragraphs only: code, literal blocks, directives, headings, tables
and field lists are dropped and inline markup is reduced to its text (:func:`prose_paragraphs`). Every
:data:`HELD_OUT_EVERY`-th document (sorted order, starting with the first) is held out for evaluation.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Dict, List

DEBIAN_PACKAGE = "python3.11-doc"
LICENSE = "PSF License Agreement (Python 3.11 documentation)"
SOURCES_DIR = "/usr/share/doc/python3.11/html/_sources"
SECTIONS = ("tutorial", "faq", "howto", "reference", "library", "using")
HELD_OUT_EVERY = 8
MIN_PARAGRAPH_CHARS = 40

_UNDERLINE = re.compile(r"^\s*([=\-~^*#+\"'`])\1{2,}\s*$")
_ROLE = re.compile(r":[\w:+-]+:`([^`]*)`")
_TARGET = re.compile(r"^(.*?)\s*<[^<>]*>$", re.S)
_LINK = re.compile(r"`([^`<]*?)\s*(?:<[^`]*>)?`__?")
_LITERAL = re.compile(r"``(.+?)``")
_EMPHASIS = re.compile(r"\*{1,2}([^*\s][^*]*?)\*{1,2}")
_BULLET = re.compile(r"^(?:[*+-]|#\.|\d+\.|\(\w\))\s+")


@dataclass
class Corpus:
    """Documents (one string each, paragraphs joined by blank lines) split into train and held-out."""

    train: List[str]
    held_out: List[str]
    train_files: List[str]
    held_out_files: List[str]

    def record(self) -> Dict[str, object]:
        """What a checkpoint records about its data: package, licence, files and a hash of the text."""
        digest = hashlib.sha256("\n\x00".join(self.train + ["\x01"] + self.held_out).encode()).hexdigest()
        return {"debian_package": DEBIAN_PACKAGE, "license": LICENSE, "sources_dir": SOURCES_DIR,
                "train_files": self.train_files, "held_out_files": self.held_out_files,
                "train_chars": sum(map(len, self.train)), "held_out_chars": sum(map(len, self.held_out)),
                "sha256": digest}


def _inline_text(text: str) -> str:
    """reST inline markup -> its plain text (roles, literals, links, emphasis, substitutions)."""
    def role(match: "re.Match[str]") -> str:
        inner = _TARGET.sub(r"\1", match.group(1))
        return inner.lstrip("~!")

    text = _ROLE.sub(role, text)
    text = _LITERAL.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\1", text)
    text = re.sub(r"\|(\w+)\|", r"\1", text)
    text = re.sub(r"\s+::$", "", text)
    text = re.sub(r"::$", ":", text)
    return re.sub(r"\s+", " ", text).strip()


def _is_prose(text: str) -> bool:
    letters = sum(c.isalpha() or c in " ,.'" for c in text)
    return len(text) >= MIN_PARAGRAPH_CHARS and letters >= 0.85 * len(text) and text[0].isalnum()


def prose_paragraphs(rst: str) -> List[str]:
    """The prose paragraphs of one reST source, each as one line of plain text."""
    blocks, block = [], []
    for line in rst.splitlines() + [""]:
        if line.strip():
            block.append(line.rstrip())
        elif block:
            blocks.append(block)
            block = []
    paragraphs: List[str] = []
    skip_deeper_than = None  # indentation of a directive / literal-block opener whose body is skipped
    for lines in blocks:
        indent = len(lines[0]) - len(lines[0].lstrip())
        if skip_deeper_than is not None and indent > skip_deeper_than:
            continue
        skip_deeper_than = None
        first = lines[0].strip()
        if first.startswith(".."):
            skip_deeper_than = indent
            continue
        if lines[-1].rstrip().endswith("::"):
            skip_deeper_than = indent
        if any(_UNDERLINE.match(l) for l in lines) or first.startswith(("+", "|", ">>>", "...", ":", "=")):
            continue
        text = _inline_text(_BULLET.sub("", " ".join(l.strip() for l in lines)))
        if text and _is_prose(text):
            paragraphs.append(text)
    return paragraphs


def source_files(sources_dir: str = SOURCES_DIR) -> List[str]:
    """The slice's files, relative to ``sources_dir``, in sorted order."""
    if not os.path.isdir(sources_dir):
        raise FileNotFoundError(f"{sources_dir} is missing: install Debian's {DEBIAN_PACKAGE} (apt-get install {DEBIAN_PACKAGE})")
    files = []
    for section in SECTIONS:
        folder = os.path.join(sources_dir, section)
        if os.path.isdir(folder):
            files += [f"{section}/{name}" for name in sorted(os.listdir(folder))
                      if name.endswith(".rst.txt") and name != "index.rst.txt"]
    if not files:
        raise FileNotFoundError(f"{sources_dir} has no *.rst.txt files under {', '.join(SECTIONS)}")
    return files


def load_corpus(sources_dir: str = SOURCES_DIR) -> Corpus:
    """Read and clean the slice; every :data:`HELD_OUT_EVERY`-th document is held out."""
    train, held_out, train_files, held_out_files = [], [], [], []
    for i, name in enumerate(source_files(sources_dir)):
        with open(os.path.join(sources_dir, name), encoding="utf-8") as f:
            text = "\n\n".join(prose_paragraphs(f.read()))
        if not text:
            continue
        if i % HELD_OUT_EVERY == 0:
            held_out.append(text)
            held_out_files.append(name)
        else:
            train.append(text)
            train_files.append(name)
    return Corpus(train, held_out, train_files, held_out_files)
