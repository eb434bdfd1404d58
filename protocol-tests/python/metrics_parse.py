"""Fetches a Prometheus endpoint and parses it with prometheus_client's own
text-format parser (the reference implementation, not ours). Prints one
JSON object: sample name with sorted labels -> value. Exits 1 if the page
does not parse."""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

url = sys.argv[1]
with urllib.request.urlopen(url, timeout=10) as r:
    ctype = r.headers.get("Content-Type", "")
    text = r.read().decode("utf-8")
out = {"__content_type": ctype}
families = 0
for fam in text_string_to_metric_families(text):
    families += 1
    for s in fam.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
out["__families"] = families
print(json.dumps(out))
