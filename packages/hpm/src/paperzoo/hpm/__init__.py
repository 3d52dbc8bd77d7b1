"""paperzoo.hpm (in progress)."""

__all__: list[str] = []
