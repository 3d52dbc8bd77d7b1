"""paperzoo.neucb (in progress)."""

__all__: list[str] = []
