import pytest

from incidents.detection.base import Detector, registry


@pytest.fixture
def test_detector():
    """A detector registered for the test only (thresholds repeats and window_s), removed afterwards."""
    name = "test-loop"
    previous = registry.get(name)
    registry[name] = Detector(name, "streaming", lambda **kw: [], {"repeats": 3, "window_s": 60.0}, "pause")
    yield name
    if previous is None:
        registry.pop(name, None)
    else:
        registry[name] = previous
