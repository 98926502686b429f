"""After `make scenarios`: every scenario of the JUnit XML (reports/junit.xml) names its run
directory, that directory holds report.html, and the pytest-html page (reports/index.html) links
it. Exit 1 naming what is missing."""

import os
import sys
from pathlib import Path

from harness.junit import cases  # the venv's (make setup installs the checkout)

reports = Path(sys.argv[1] if len(sys.argv) > 1 else "reports")
run_dirs = [case.run_dir for case in cases(reports / "junit.xml") if case.run_dir is not None]
page = (reports / "index.html").read_text()
problems = []
for run_dir in run_dirs:
    report = run_dir / "report.html"
    if not report.is_file():
        problems.append(f"no report.html in {run_dir}")
    elif os.path.relpath(report.resolve(), reports.resolve()) not in page:
        problems.append(f"{report} is not linked from {reports / 'index.html'}")
print(f"reports: {len(run_dirs)} scenario runs in junit.xml, {len(problems)} problems")
for p in problems:
    print(f"  {p}")
sys.exit(1 if problems or not run_dirs else 0)
