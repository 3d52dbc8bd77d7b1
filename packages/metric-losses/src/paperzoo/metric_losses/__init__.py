"""paperzoo.metric_losses (in progress)."""

__all__: list[str] = []
