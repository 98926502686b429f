"""The exceptions a caller of the harness can catch."""


class HarnessError(Exception):
    """Base of every error the harness raises on purpose; its message says what to do."""


class EngineUnavailable(HarnessError):
    """No Docker engine answers."""


class ImageError(HarnessError):
    """An image is missing or could not be built."""


class TopologyError(HarnessError):
    """The system under test could not be brought up, reset or torn down."""
