"""Every resource mamori's FHIR interface answered with, parsed and validated by PyPI's
fhir.resources with its FHIR R4 (4.0.1) models. Reads a JSON array on stdin; exits 1 naming
each resource that is not valid R4."""
import json
import sys

import fhir.resources
from fhir.resources import get_fhir_model_class

assert fhir.resources.__fhir_version__ == "4.0.1", fhir.resources.__fhir_version__
items = json.load(sys.stdin)
bad = 0
for i, r in enumerate(items):
    try:
        get_fhir_model_class(r["resourceType"]).parse_obj(r)
    except Exception as e:  # noqa: BLE001 - every failure is reported by name
        bad += 1
        print(f"#{i} {r.get('resourceType')}: {e}")
print(f"{len(items) - bad} valid R4 resources, {bad} invalid")
sys.exit(1 if bad else 0)
