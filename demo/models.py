from demo.gamedays.models import Gameday

__all__ = ["Gameday"]
