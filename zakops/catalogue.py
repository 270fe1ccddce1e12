"""The action types the ZakOps engine runs, with the risk SPEC §2's default rules give them.

`level` and `requires_approval` are what the default rules say for the sample inputs; the
seed data uses the catalogue, and the risk tests check the assessor against it.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CatalogueEntry:
    action_type: str
    capability_id: str
    title: str
    level: str
    requires_approval: bool
    inputs: dict = field(default_factory=dict)


ACTION_CATALOGUE = (
    CatalogueEntry(
        "COMMUNICATION.SEND_EMAIL", "communication.send_email.v1", "Send follow-up e-mail to seller",
        "critical", True, {"to": "cfo@seller-example.com", "subject": "Next steps"},
    ),
    CatalogueEntry(
        "COMMUNICATION.DRAFT_EMAIL", "communication.draft_email.v1", "Draft intro e-mail",
        "medium", True, {"subject": "Introduction"},
    ),
    CatalogueEntry(
        "DOCUMENT.GENERATE_LOI", "document.generate_loi.v1", "Generate letter of intent",
        "high", True, {"template": "loi-standard"},
    ),
    CatalogueEntry(
        "DOCUMENT.GENERATE_NDA", "document.generate_nda.v1", "Generate mutual NDA",
        "high", True, {"template": "nda-mutual"},
    ),
    CatalogueEntry(
        "DOCUMENT.GENERATE_PITCH_DECK", "document.generate_pitch_deck.v1", "Generate pitch deck",
        "high", True, {"slides": 12},
    ),
    CatalogueEntry(
        "FINANCIAL.PAYMENT_TRANSFER", "financial.payment_transfer.v1", "Transfer escrow deposit",
        "high", True, {"amount": 250000, "currency": "USD"},
    ),
    CatalogueEntry(
        "DEAL.ENRICH_MATERIALS", "deal.enrich_materials.v1", "Enrich deal materials",
        "medium", False, {"sources": ["crunchbase", "filings"]},
    ),
    CatalogueEntry(
        "DEAL.PROFILE_ENRICHED", "deal.profile_enriched.v1", "Refresh company profile",
        "medium", False, {"fields": ["revenue", "headcount"]},
    ),
    CatalogueEntry(
        "ANALYSIS.VALUATION", "analysis.valuation.v1", "Run DCF valuation",
        "medium", False, {"method": "dcf"},
    ),
    CatalogueEntry(
        "ANALYSIS.COMPARABLES", "analysis.comparables.v1", "Find comparable transactions",
        "medium", False, {"limit": 5},
    ),
    CatalogueEntry(
        "DEAL.UPDATE_STAGE", "deal.update_stage.v1", "Move deal to diligence",
        "medium", True, {"stage": "diligence"},
    ),
    CatalogueEntry(
        "DEAL.GET_DETAILS", "deal.get_details.v1", "Read deal details",
        "low", False, {},
    ),
    CatalogueEntry(
        "DOCUMENT.LIST_FILES", "document.list_files.v1", "List data-room files",
        "low", False, {"folder": "/"},
    ),
)
