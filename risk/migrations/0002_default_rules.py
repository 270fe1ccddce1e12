from decimal import Decimal

from django.db import migrations

DEFAULT_RULES = [
    {
        "name": "external_email",
        "description": "Sending external emails requires approval",
        "risk_level": "critical",
        "requires_approval": True,
        "action_types": ["COMMUNICATION.SEND_EMAIL"],
        "action_type_patterns": ["*SEND*EMAIL*", "*EMAIL*SEND*"],
    },
    {
        "name": "document_generation",
        "description": "Generated legal documents (LOI, NDA) need review before they go out",
        "risk_level": "high",
        "requires_approval": True,
        "action_types": ["DOCUMENT.GENERATE_LOI", "DOCUMENT.GENERATE_NDA"],
        "action_type_patterns": ["DOCUMENT.GENERATE*", "*GENERATE*LOI*"],
    },
    {
        "name": "high_value_operation",
        "description": "Payments, transfers and financial operations of 10,000 or more require approval",
        "risk_level": "high",
        "requires_approval": True,
        "action_type_patterns": ["*PAYMENT*", "*TRANSFER*", "*FINANCIAL*"],
        "min_amount": Decimal("10000"),
    },
    {
        "name": "data_enrichment",
        "description": "Enriching deal data changes internal records only",
        "risk_level": "medium",
        "requires_approval": False,
        "action_types": ["DEAL.ENRICH_MATERIALS", "DEAL.PROFILE_ENRICHED"],
        "action_type_patterns": ["*ENRICH*", "*PROFILE*"],
    },
    {
        "name": "analysis",
        "description": "Analysis and valuation produce internal reports only",
        "risk_level": "medium",
        "requires_approval": False,
        "action_type_patterns": ["ANALYSIS.*", "*VALUATION*", "*ANALYZE*"],
    },
    {
        "name": "read_only",
        "description": "Read-only operations change nothing",
        "risk_level": "low",
        "requires_approval": False,
        "action_type_patterns": ["*GET*", "*LIST*", "*READ*", "*FETCH*"],
    },
]


def create_defaults(apps, schema_editor):
    RiskRule = apps.get_model("risk", "RiskRule")
    RiskSettings = apps.get_model("risk", "RiskSettings")
    for rule in DEFAULT_RULES:
        RiskRule.objects.get_or_create(name=rule["name"], defaults=rule)
    RiskSettings.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("risk", "0001_initial")]
    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
