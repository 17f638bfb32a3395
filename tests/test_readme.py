"""The README's experiment example is a real experiment: it validates against the schema."""

import re
from pathlib import Path

import yaml

from simlat.config.loader import parse_experiment

ROOT = Path(__file__).resolve().parents[1]


def test_readme_yaml_example_validates():
    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README has no yaml example"
    for block in blocks:
        exp = parse_experiment(yaml.safe_load(block), base_dir=ROOT / "experiments", source="README example")
        assert exp.sweep is not None and exp.service.kind == "profile"


def test_readme_quick_start_has_exactly_two_commands():
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [ln for ln in re.findall(r"```bash\n(.*?)```", section, re.S)[0].splitlines() if ln.strip()]
    assert [c.split("#")[0].strip() for c in commands] == ["python3 tasks.py demo", "python3 tasks.py test"]
    assert "python3 tasks.py test" in (ROOT / ".ci" / "run").read_text()


def test_readme_example_sets_nothing_that_is_ignored_and_names_no_shipped_experiment():
    from simlat.config.ignored import ignored_settings

    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    shipped = {p.stem for p in (ROOT / "experiments").glob("*.yaml")}
    for block in blocks:
        exp = parse_experiment(yaml.safe_load(block), base_dir=ROOT / "experiments", source="README example")
        assert ignored_settings(exp) == []
        assert exp.name not in shipped  # it would overwrite that experiment's report and cache
