"""`ephyto bench cert`: parse + full validation, and build, of one certificate, on one core.

The baseline, measured in the same run on the same bytes, is a bare lxml parse, so the
ratio reads the same on a busy machine and an idle one.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from node.certificate import safe_xml
from node.certificate.validate import Report, Validator
from node.certificate.xml_build import to_xml_bytes
from node.certificate.xml_parse import certificate_from_tree
from node.errors import InputError

Samples = list[float]


@dataclass(frozen=True, slots=True)
class CertFigures:
    """Seconds per call of each measurement, one sample per call."""

    baseline: Samples
    validate: Samples
    read: Samples
    both: Samples
    build: Samples

    def rows(self) -> list[tuple[str, Samples]]:
        """Each measurement with its label, the baseline first."""
        return [
            ("baseline: bare lxml parse", self.baseline),
            ("parse + full validation", self.validate),
            ("read tree into the model", self.read),
            ("validation + model, together", self.both),
            ("build (model to XML bytes)", self.build),
        ]

    def ratio(self) -> float:
        """Parse + full validation over a bare parse, by medians."""
        return statistics.median(self.validate) / statistics.median(self.baseline)


def measure(data: bytes, seconds: float, on_start: Callable[[Report], object]) -> CertFigures:
    """Pin to one core, check `data` reads as a certificate, then time each operation.

    `on_start` is told the validation report before the timing starts. InputError when
    `data` is not a certificate at all.
    """
    _pin_to_one_core()
    validator = Validator.default()
    report = validator.validate(data)
    if report.certificate is None:
        raise InputError(f"the benchmark certificate cannot be read: {report.findings[0]}")
    cert = report.certificate
    on_start(report)
    baseline = _measure(lambda: etree.fromstring(data), seconds)
    validate = _measure(lambda: validator.validate(data), seconds)
    root = safe_xml.parse(data)
    read = _measure(lambda: certificate_from_tree(root), seconds)
    both = _measure(lambda: validator.validate(data).certificate, seconds)
    build = _measure(lambda: to_xml_bytes(cert), seconds)
    return CertFigures(baseline, validate, read, both, build)


def _measure(operation: Callable[[], object], seconds: float) -> list[float]:
    """Seconds per call, one sample per call, after a short warm-up."""
    for _ in range(50):
        operation()
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(samples) < 20:
        start = time.perf_counter()
        operation()
        samples.append(time.perf_counter() - start)
    return samples


def _pin_to_one_core() -> None:
    """One core, as the target says; the last one is usually the least busy."""
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[-1]})
