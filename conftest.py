# The harness's pytest plugin: options, markers, fixtures (harness/plugin.py).
pytest_plugins = ["harness.plugin"]
