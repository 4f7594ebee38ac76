"""Ship the staged runs that exist into GMGAN_TEACHING_MODELS (drafting only)."""
import json, sys
sys.path.insert(0, "/work/next")
sys.path.insert(0, "/work/next/benchmarks/results/production")
import ship
from gmgan.experiments import SHIP_RAW, SHIPPED_DIR, export_run, load_run, config_key
from gmgan.config import TrainConfig
print("into", SHIPPED_DIR)
for name, (cfg, parent) in ship.planned().items():
    saved = ship.STAGED / name
    if not (saved / "config.yaml").is_file() or (SHIPPED_DIR / "teach" / name).exists():
        continue
    diff = ship.differences(config_key(TrainConfig.from_yaml(saved / "config.yaml")), config_key(cfg))
    assert not diff, (name, diff)
    dst = export_run(load_run(saved, preset="teach"), SHIPPED_DIR / "teach" / name, raw=name in SHIP_RAW)
    record = json.loads((dst / "run.json").read_text())
    record["parent"] = parent
    (dst / "run.json").write_text(json.dumps(record, indent=1))
    print("shipped", name)
