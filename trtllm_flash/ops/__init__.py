"""Token-mixer ops: one folder per family (attention, mamba, causal_conv, delta_rule, norms)."""
