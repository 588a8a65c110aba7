"""The keyset position pages walk from: no OFFSET, no COUNT(*), only the (started_at, id) index."""

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Cursor:
    """Position after the last trace of a page: its start time and id."""

    started_at: datetime
    id: int

    def encode(self) -> str:
        micros = int(self.started_at.timestamp() * 1_000_000)
        return f"{micros}_{self.id}"

    @classmethod
    def decode(cls, raw: str) -> "Cursor | None":
        """The cursor in ``raw``, or None when it is not one (the caller starts from the top)."""
        try:
            micros, pk = raw.split("_", 1)
            started_at = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
            return cls(started_at=started_at, id=int(pk))
        except (ValueError, OverflowError, OSError):
            return None
