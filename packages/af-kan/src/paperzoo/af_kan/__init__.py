"""paperzoo.af_kan (in progress)."""

__all__: list[str] = []
