"""fhirpy, a real FHIR client, against mamori: creates a patient (JP_Patient), reads it back,
searches by kana and follows the paging links. Prints what it saw as JSON."""
import json
import sys

from fhirpy import SyncFHIRClient

base, token, system = sys.argv[1], sys.argv[2], sys.argv[3]
client = SyncFHIRClient(base, authorization=f"Bearer {token}")
rep = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
patient = client.resource(
    "Patient",
    identifier=[{"system": system, "value": "FP001"}],
    name=[
        {"extension": [{"url": rep, "valueCode": "IDE"}], "family": "高橋", "given": ["翼"]},
        {"extension": [{"url": rep, "valueCode": "SYL"}], "family": "タカハシ", "given": ["ツバサ"]},
    ],
    gender="female",
    birthDate="1990-05-05",
)
patient.save()
read = client.reference("Patient", "FP001").to_resource()
found = client.resources("Patient").search(name="タカハシ").limit(1).fetch_all()
print(json.dumps({
    "created_id": patient.id,
    "read_name": read["name"][0]["text"],
    "read_kana": read["name"][1]["text"],
    "found": sorted(p.id for p in found),
}, ensure_ascii=False))
