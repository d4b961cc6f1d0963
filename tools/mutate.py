"""Mutation score: apply each one-line bug of :mod:`mutations` to a scratch copy and see whether the suite catches it.

    python tools/mutate.py [--only NAME ...] [--subset-only] [--skip-baseline] [--timeout S] [--scratch DIR] [--json OUT]

The scratch copy holds the repository's tracked and untracked (not ignored) files; tests run there with
``PYTHONPATH`` pointing at it, so its ``trtllm_flash`` (not the installed one) is imported. Per mutant: the
mapped subset of tests first (``-x``; a failure there is a failure of the suite), then the whole suite only
when the subset passes (``--subset-only``: never; such a mutant is reported as missed by its subset). A mutant is *caught* when pytest fails (or runs past ``--timeout``: CI would fail
too); it *survives* when the whole suite passes. The subsets are first run on the unmutated copy, which
must pass (``--skip-baseline`` when the whole suite has just passed on this very tree). Not part of CI: it runs the suite up to once per mutant.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mutations import MUTATIONS, Mutation  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]


def make_scratch(scratch: Path) -> None:
    """Copy the repository's tracked and untracked, not ignored files into ``scratch`` (replaced)."""
    if scratch.exists():
        shutil.rmtree(scratch)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            target = scratch / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def run_pytest(scratch: Path, paths, timeout: float) -> str:
    """'pass', 'fail' or 'timeout' for pytest over ``paths`` in ``scratch``."""
    env = dict(os.environ, PYTHONPATH=str(scratch), OMP_NUM_THREADS="1")
    try:
        result = subprocess.run(PYTEST + list(paths), cwd=scratch, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout"
    return "pass" if result.returncode == 0 else "fail"


def apply(scratch: Path, mutation: Mutation) -> str:
    """Write the mutant into ``scratch``; returns the original text to restore."""
    path = scratch / mutation.path
    text = path.read_text()
    if text.count(mutation.old) != 1:
        raise ValueError(f"{mutation.name}: {mutation.path} holds {text.count(mutation.old)} copies of its 'old' line (needs 1)")
    path.write_text(text.replace(mutation.old, mutation.new))
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", help="mutation names to run (default: all)")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per pytest run (default 1200)")
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/trtllm_flash_mutate"), help="scratch copy directory")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--subset-only", action="store_true", help="skip the whole-suite run (quick look at the mapping)")
    parser.add_argument("--skip-baseline", action="store_true", help="the whole suite just passed on this tree")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    unknown = set(args.only or ()) - {m.name for m in MUTATIONS}
    if unknown:
        parser.error(f"unknown mutation(s): {sorted(unknown)}")

    make_scratch(args.scratch)
    for m in chosen:  # every entry applies before anything runs
        (args.scratch / m.path).write_text(apply(args.scratch, m))
    subsets = sorted({t for m in chosen for t in m.tests})
    if not args.skip_baseline:
        print(f"baseline: {len(subsets)} test paths on the unmutated copy ...", flush=True)
        baseline = run_pytest(args.scratch, subsets, args.timeout * 2)
        if baseline != "pass":
            print(f"baseline {baseline}: fix the suite first", flush=True)
            return 2

    results = []
    for i, m in enumerate(chosen, 1):
        start = time.monotonic()
        original = apply(args.scratch, m)
        try:
            outcome, by = run_pytest(args.scratch, m.tests, args.timeout), "subset"
            if outcome == "pass" and not args.subset_only:
                outcome, by = run_pytest(args.scratch, ["tests"], args.timeout), "suite"
        finally:
            (args.scratch / m.path).write_text(original)
        caught = outcome != "pass"
        results.append({"name": m.name, "area": m.area, "caught": caught, "outcome": outcome, "by": by,
                        "seconds": round(time.monotonic() - start, 1), "why": m.why})
        print(f"[{i}/{len(chosen)}] {m.name:<34} {'CAUGHT' if caught else 'SURVIVED'} ({outcome} in {by}, "
              f"{results[-1]['seconds']:.0f}s)", flush=True)

    caught = sum(r["caught"] for r in results)
    print(f"\ncaught {caught}/{len(results)} ({100 * caught / len(results):.0f} %)")
    for r in results:
        if not r["caught"]:
            print(f"  survivor: {r['name']} ({r['area']}): {r['why']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
