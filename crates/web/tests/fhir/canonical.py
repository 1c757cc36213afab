"""The bytes a FHIR document's signature covers, computed independently of mamori: the Bundle
without id, meta and signature, as JSON with sorted keys and no whitespace (FHIR R4 §2.6.3).
Reads the Bundle on stdin, writes the bytes to the file named by the first argument and the
signature (base64-decoded Bundle.signature.data) to the second."""
import base64
import json
import sys

bundle = json.load(sys.stdin)
data = base64.b64decode(bundle["signature"]["data"])
for k in ("id", "meta", "signature"):
    bundle.pop(k, None)
with open(sys.argv[1], "wb") as f:
    f.write(json.dumps(bundle, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
with open(sys.argv[2], "wb") as f:
    f.write(data)
