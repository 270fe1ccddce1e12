"""The default rules that lower risk match verbs, not substrings (SPEC §2).

The first defaults matched `*GET*`, `*READ*`, `*PROFILE*`…, which rated write actions such
as DEAL.UPDATE_TARGET_PRICE (tarGET) or DOCUMENT.DELETE_THREAD (thREAD) low, with no
approval. This moves `read_only` and `data_enrichment` to verb-anchored patterns, but only
where the stored rule is still exactly the first default: a rule an admin edited is left
alone, and the migration says so.
"""

from django.db import migrations

FIRST = {
    "read_only": {
        "description": "Read-only operations change nothing",
        "risk_level": "low",
        "requires_approval": False,
        "action_types": [],
        "action_type_patterns": ["*GET*", "*LIST*", "*READ*", "*FETCH*"],
    },
    "data_enrichment": {
        "description": "Enriching deal data changes internal records only",
        "risk_level": "medium",
        "requires_approval": False,
        "action_types": ["DEAL.ENRICH_MATERIALS", "DEAL.PROFILE_ENRICHED"],
        "action_type_patterns": ["*ENRICH*", "*PROFILE*"],
    },
}
VERB_ANCHORED = {
    "read_only": ["*.GET", "*.GET_*", "*.LIST", "*.LIST_*", "*.READ", "*.READ_*", "*.FETCH", "*.FETCH_*"],
    "data_enrichment": ["*.ENRICH*"],
}


def _is_first_default(rule, first) -> bool:
    stored = {name: getattr(rule, name) for name in first}
    stored["action_types"] = list(stored["action_types"] or [])
    stored["action_type_patterns"] = list(stored["action_type_patterns"] or [])
    return stored == first and not rule.input_patterns and rule.min_amount is None


def _move(apps, *, to_new: bool):
    RiskRule = apps.get_model("risk", "RiskRule")
    for name, first in FIRST.items():
        rule = RiskRule.objects.filter(name=name).first()
        if rule is None:
            continue
        now_default = {**first, "action_type_patterns": VERB_ANCHORED[name]}
        before, after = (first, now_default) if to_new else (now_default, first)
        if _is_first_default(rule, before):
            rule.action_type_patterns = after["action_type_patterns"]
            rule.save(update_fields=["action_type_patterns", "updated_at"])
            print(f"\n  risk: default rule {name} now matches {', '.join(after['action_type_patterns'])}")
        elif to_new:
            print(
                f"\n  risk: rule {name} was edited, so it is left as it is ({', '.join(rule.action_type_patterns or [])}); "
                f"check that it matches verbs, not substrings: the new default is {', '.join(VERB_ANCHORED[name])}"
            )


def forwards(apps, schema_editor):
    _move(apps, to_new=True)


def backwards(apps, schema_editor):
    _move(apps, to_new=False)


class Migration(migrations.Migration):
    dependencies = [("risk", "0005_write_verb_floor")]
    operations = [migrations.RunPython(forwards, backwards)]
