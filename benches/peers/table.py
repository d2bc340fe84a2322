"""Reads the RESULT lines of one peers run and prints, per configuration,
each tool's median seconds per batch and its ratio to Assay's (above 1:
the peer is slower), with the spread (min-max of the peer's rounds over
Assay's median)."""
import sys

rows = {}
for line in sys.stdin:
    if not line.startswith("RESULT "):
        continue
    tool, config, med, lo, hi = line[len("RESULT "):].strip().split("|")
    rows.setdefault(config, {})[tool] = (float(med), float(lo), float(hi))
print(f"{'configuration':<26} {'tool':<22} {'median s':>9} {'vs Assay':>9} {'spread':>13}")
for config, tools in rows.items():
    base = tools.get("assay")
    for tool, (med, lo, hi) in sorted(tools.items(), key=lambda t: t[0] != "assay"):
        if base and tool != "assay":
            ratio = f"{med / base[0]:.2f}x"
            spread = f"{lo / base[0]:.2f}-{hi / base[0]:.2f}"
        else:
            ratio, spread = "", ""
        print(f"{config:<26} {tool:<22} {med:>9.4f} {ratio:>9} {spread:>13}")
