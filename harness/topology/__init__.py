"""Topology: bring the system under test up, reset it, tear it down (Jepsen's `db`).

`docker` is the backend that makes one run's containers and networks; `services`
says how each infrastructure service starts and answers.
"""
