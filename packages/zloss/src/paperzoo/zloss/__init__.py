"""paperzoo.zloss (in progress)."""

__all__: list[str] = []
