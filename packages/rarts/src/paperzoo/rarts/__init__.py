"""paperzoo.rarts (in progress)."""

__all__: list[str] = []
