"""paperzoo.ldr (in progress)."""

__all__: list[str] = []
