"""Fail on any `snakemake --lint` finding except the per-rule conda/container one.

This project is pip-installed into one environment (Makefile, environment.yml) that every rule
uses, so rules declare no per-rule conda environment or container.
"""

import re
import subprocess
import sys

ALLOWED = "Specify a conda environment or container for each rule."
proc = subprocess.run(["snakemake", "--lint"], capture_output=True, text=True)
text = proc.stdout + proc.stderr
findings = re.findall(r"^\s+\* (.+?):?$", text, flags=re.M)
if not findings and proc.returncode != 0:
    sys.exit(f"snakemake --lint failed without findings:\n{text}")
unexpected = [f for f in findings if f.rstrip(":") != ALLOWED.rstrip(":")]
if unexpected:
    print(text)
    sys.exit(f"snakemake --lint: {len(unexpected)} finding(s) besides the conda/container one: {unexpected}")
print(f"snakemake --lint: clean ({len(findings)} rules without a per-rule conda environment, by design)")
