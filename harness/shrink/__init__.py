"""Shrink (issue 31): from a failing run to the smallest schedule that still fails the same way.

ddmin.py is the pure search over a list (Zeller's delta debugging); candidate.py reads the failing run
and writes candidates as plain scenario files; oracle.py runs one and says whether it still fails;
passes.py is each way a candidate gets smaller; search.py drives them within a budget, logged to
shrink.jsonl so a killed shrink resumes where it stopped."""
