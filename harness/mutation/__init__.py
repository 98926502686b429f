"""Mutation testing of the judge (docs/mutation.md): machine-made mutants of netsync's promise-bearing
modules, each run as an image of its own against the scenarios that guard its file, and the mutation
score (killed, survived with the mutant's diff, timed out). `make mutation`, or `python -m
harness.mutation`."""
