"""The dataset card (``README.md``) of a release.

Promises: the card is rendered only from the release's manifest and column list, so it says
nothing the release does not hold (no upload names, no pseudonyms; annotators and reviewers
as roles with counts, by name only when the lab opted in); its YAML front matter is
the huggingface dataset-card header (licence, task, ``configs`` pointing at the Parquet files,
features), so ``datasets.load_dataset(<release folder>)`` works as well as
``load_dataset("parquet", data_dir=...)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from dataset.release.manifest import ReleaseField, ReleaseManifest

__all__ = ["render_card"]

_SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
)


def _q(text: str) -> str:
    """A YAML scalar: JSON strings are valid double-quoted YAML."""
    return json.dumps(text)


def _size_category(n: int) -> str:
    for limit, name in _SIZE_CATEGORIES:
        if n < limit:
            return name
    return "n>10M"


def _dtype(feature: dict) -> str:
    return "image" if feature.get("_type") == "Image" else feature["dtype"]


def _front_matter(m: ReleaseManifest, fields: Sequence[ReleaseField]) -> str:
    lines = [
        "---",
        f"license: {_q(m.license)}",
        f"pretty_name: {_q(f'SmearLab blood-smear tiles {m.version}')}",
        "task_categories:",
        "- image-segmentation",
        "tags:",
        "- microscopy",
        "- blood-smear",
        "- hematology",
        "- semantic-segmentation",
        "size_categories:",
        f"- {_q(_size_category(m.n_tiles))}",
        "configs:",
        "- config_name: default",
        "  data_files:",
    ]
    splits = [s for s, n in m.rows.items() if n > 0]
    for split in splits:
        lines += [f"  - split: {split}", f"    path: {_q(f'data/{split}-*.parquet')}"]
    lines += ["dataset_info:", "  features:"]
    for f in fields:
        lines += [f"  - name: {f.name}", f"    dtype: {_q(_dtype(f.feature))}"]
    lines.append("---")
    return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


_STATE_WORDS = {
    "approved": "approved",
    "changes_requested": "changes requested",
    "unreviewed": "unreviewed",
}


def _review_and_people(m: ReleaseManifest) -> list[str]:
    """The card's review counts and who took part (roles with counts unless the lab opted
    in to names)."""
    if not m.review_counts:  # a release made before reviews existed
        return []
    which = "approved tiles only" if m.approved_only else "every labelled tile"
    out = [
        "",
        "## Review",
        "",
        f"This release holds {which}. The review state of each released revision when the "
        "release began:",
        "",
        "| state | tiles |",
        "|---|---:|",
    ]
    out += [f"| {_STATE_WORDS.get(k, k)} | {n} |" for k, n in m.review_counts.items()]
    out += ["", "## People", ""]
    if m.named_people is None:
        out += [
            "The lab chose not to name people. The `annotator` column holds a pseudonymous "
            "account key: the same account has the same key in every release of this "
            "workspace, and the key cannot be traced to a name without the workspace.",
            "",
            "| role | accounts |",
            "|---|---:|",
        ]
        out += [f"| {role} | {n} |" for role, n in m.people.items()]
        return out
    out += ["| role | account | tiles |", "|---|---|---:|"]
    for role, counts in m.named_people.items():
        out += [f"| {role.removesuffix('s')} | {name} | {n} |" for name, n in counts.items()]
    return out


def _agreement(m: ReleaseManifest) -> list[str]:
    """The card's inter-annotator agreement of the released double-labelled tiles."""
    report = m.agreement
    if report is None:  # a release made before agreement was measured
        return []
    out = ["", "## Agreement between annotators", ""]
    if not report.n_tiles:
        out.append(
            "No released tile was labelled twice, so this release carries no measure of "
            "agreement between annotators."
        )
        return out
    who = "account names" if m.named_people is not None else "pseudonymous account keys"
    out += [
        f"{report.n_tiles} released tiles were labelled twice, independently (the second "
        "annotator did not see the first mask). Per annotator pair (as "
        f"{who}) and class: Dice and IoU between the two masks over the pixels both "
        "labelled, pooled over the pair's tiles; tiles counts those where the class appears.",
        "",
        "| annotators | class | Dice | IoU | tiles |",
        "|---|---|---:|---:|---:|",
    ]
    out += [
        f"| {r.annotator_a} / {r.annotator_b} | {r.class_name} | {r.dice:.3f} | {r.iou:.3f} "
        f"| {r.n_tiles} |"
        for r in report.rows
    ]
    return out


def render_card(
    manifest: ReleaseManifest, fields: Sequence[ReleaseField], data_files: Sequence[str]
) -> str:
    """Markdown dataset card of a release.

    Args:
        manifest: The release's manifest (its ``files`` may still be empty).
        fields: The release's columns, in order.
        data_files: Paths of the Parquet files, relative to the release folder.
    """
    m = manifest
    total_px = sum(m.class_pixel_counts.values())
    unlabelled = m.class_pixel_counts.get(m.unlabelled.name, 0)
    out = [_front_matter(m, fields), ""]
    out += [
        f"# SmearLab blood-smear tiles, release {m.version}",
        "",
        f"> {m.message}",
        "",
        f"Released {m.created_at:%Y-%m-%d %H:%M} UTC: {m.n_tiles} labelled tiles of "
        f"{sum(m.smears.values())} smears, for semantic segmentation of blood-smear photos.",
        "",
        "## Splits",
        "",
        "| split | tiles | smears | patients (known) | files |",
        "|---|---:|---:|---:|---:|",
    ]
    for split, n in m.rows.items():
        n_files = sum(1 for f in data_files if f.startswith(f"data/{split}-"))
        out.append(f"| {split} | {n} | {m.smears[split]} | {m.patients[split]} | {n_files} |")
    out += [
        "",
        "## Classes",
        "",
        "Mask pixels hold the class index below; "
        f"{m.unlabelled.value} means nobody labelled the pixel (ignore it in training). "
        "Shares are of labelled pixels; the unlabelled share is of all pixels.",
        "",
        "| value | class | colour | pixels | share |",
        "|---:|---|---|---:|---:|",
    ]
    for c in m.classes:
        share = m.class_pixel_shares.get(c.name, 0.0)
        out.append(
            f"| {c.value} | {c.name} | `{c.color}` | {m.class_pixel_counts.get(c.name, 0)} "
            f"| {_pct(share)} |"
        )
    out.append(
        f"| {m.unlabelled.value} | {m.unlabelled.name} | `{m.unlabelled.color}` | {unlabelled} "
        f"| {_pct(unlabelled / total_px if total_px else 0.0)} of all |"
    )
    out += _review_and_people(m)
    out += _agreement(m)
    out += ["", "## Columns", "", "| column | type | meaning |", "|---|---|---|"]
    out += [f"| `{f.name}` | {_dtype(f.feature)} | {f.doc} |" for f in fields]
    split_list = ", ".join(s for s, n in m.rows.items() if n)
    out += [
        "",
        "## How it was made",
        "",
        "- Smears were photographed, uploaded to a SmearLab workspace and cut into tiles; "
        "people painted the masks tile by tile, and every save is kept as a revision.",
        "- This release holds, for every tile whose latest revision has at least one labelled "
        "pixel and that nobody marked as skipped"
        + (" and whose latest revision a reviewer approved" if m.approved_only else "")
        + ", that latest revision as it was when the "
        f"release began (workspace table versions: "
        f"{', '.join(f'{k} {v}' for k, v in sorted(m.table_versions.items()))}).",
        "- `image` is the tile cut from the stored smear pixels (lossless PNG); `mask` is the "
        "saved mask PNG, byte for byte. Both carry the path `<tile_id>.png`; upload file "
        "names are never included.",
        "- The split belongs to the workspace and is shared with training: each patient (each "
        "smear when no patient is known) was assigned to train / validation / test in the "
        f"ratio 80 / 10 / 10 (seed {m.seed}) the first time it was needed, and never "
        "reassigned, so no smear and no patient appears in two splits.",
        "- `patient_key` is a keyed hash of the patient pseudonym with a secret drawn for this "
        "release alone and then discarded: it groups the tiles of one patient within this "
        "release, but cannot be traced to the pseudonym or matched across releases.",
        f"- Class schema version {m.schema_version}; release format {m.format_version}. "
        "`manifest.json` lists the SHA-256 of every file; "
        "SmearLab's `verify_release` checks them.",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("parquet", data_dir=".", split="{split_list.split(", ")[0]}")',
        'ds[0]["image"], ds[0]["mask"]  # PIL images',
        "",
        "import pandas as pd",
        'df = pd.read_parquet("data")',
        "",
        "import duckdb",
        "duckdb.sql(\"select count(*) from 'data/*.parquet'\")",
        "```",
        "",
        "## Licence",
        "",
        f"`{m.license}`"
        + (
            ": the releasing lab has not named a licence; ask them before reuse."
            if m.license == "other"
            else "."
        ),
        "",
    ]
    return "\n".join(out)
