"""Reading Prometheus exposition text the way a scraper does: one sample by name and labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One scrape's samples; a sample never exported reads as 0, as a counter not yet moved."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def __call__(self, name: str, **labels: str) -> float:
        return self._samples.get((name, frozenset(labels.items())), 0.0)

    def names(self) -> set[str]:
        return {name for name, _labels in self._samples}

    def label_values(self, label: str) -> set[str]:
        return {value for _name, labels in self._samples for key, value in labels if key == label}
