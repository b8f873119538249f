"""Static vocabularies for the demo data generator: clinics, names, devices."""

from __future__ import annotations

# (name, slug, IANA zone) — clinics spread over several time zones.
CLINICS: tuple[tuple[str, str, str], ...] = (
    ("Riverside Family Clinic", "riverside-family", "America/Chicago"),
    ("Harbor Pediatrics", "harbor-pediatrics", "America/Los_Angeles"),
    ("Northgate Internal Medicine", "northgate-im", "America/New_York"),
    ("Alpine Dermatology", "alpine-derm", "America/Denver"),
    ("Kaimana Medical Group", "kaimana-medical", "Pacific/Honolulu"),
    ("Sonoran Cardiology", "sonoran-cardio", "America/Phoenix"),
    ("Thames Valley Practice", "thames-valley", "Europe/London"),
    ("Maple Leaf Orthopedics", "maple-leaf-ortho", "America/Toronto"),
    ("Gulf Coast Urgent Care", "gulf-coast-uc", "America/Chicago"),
    ("Bayview Women's Health", "bayview-womens", "America/Los_Angeles"),
    ("Fjord Behavioral Health", "fjord-behavioral", "Europe/Oslo"),
    ("Sunrise Geriatrics", "sunrise-geriatrics", "America/New_York"),
)

FIRST_NAMES: tuple[str, ...] = (
    "Ana",
    "Ben",
    "Chloé",
    "David",
    "Elena",
    "Farah",
    "George",
    "Hana",
    "Ivan",
    "José",
    "Kenji",
    "Laura",
    "Mateo",
    "Nadia",
    "Oliver",
    "Priya",
    "Quinn",
    "Rosa",
    "Søren",
    "Tariq",
    "Uma",
    "Victor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoë",
    "Amara",
    "Bilal",
    "Carmen",
    "Diego",
    "Esther",
    "Felix",
    "Grace",
    "Hiro",
    "Ingrid",
    "Jamal",
    "Keisha",
    "Liam",
    "Mei",
    "Noah",
    "Olga",
    "Pedro",
    "Rahul",
    "Sofia",
    "Tomás",
    "Valentina",
    "William",
    "Yara",
    "Zain",
    "Aisha",
)
LAST_NAMES: tuple[str, ...] = (
    "Ruiz",
    "Okafor",
    "Nguyễn",
    "Schmidt",
    "O'Brien",
    "Kowalski",
    "Haddad",
    "Tanaka",
    "Silva",
    "Johansson",
    "Patel",
    "Kim",
    "Müller",
    "García",
    "Cohen",
    "Mensah",
    "Rossi",
    "Dubois",
    "Ivanova",
    "Chen",
    "Fernández",
    "Walker",
    "Novak",
    "Yilmaz",
    "Andersen",
    "Moreau",
    "Singh",
    "Lopez",
    "Brown",
    "Nakamura",
    "Costa",
    "Jensen",
    "Ali",
    "Murphy",
    "Petrov",
    "Santos",
)

# role -> (share of team, relative activity, action mix)
ROLES: dict[str, tuple[float, float, tuple[tuple[str, float], ...]]] = {
    "physician": (
        0.22,
        1.2,
        (
            ("chart.view", 0.55),
            ("patient_record.read", 0.14),
            ("patient_record.update", 0.1),
            ("encounter.note_signed", 0.16),
            ("chart.print", 0.05),
        ),
    ),
    "nurse_practitioner": (
        0.12,
        1.1,
        (
            ("chart.view", 0.5),
            ("patient_record.read", 0.18),
            ("patient_record.update", 0.14),
            ("encounter.note_signed", 0.15),
            ("chart.print", 0.03),
        ),
    ),
    "medical_assistant": (
        0.24,
        1.0,
        (
            ("chart.view", 0.4),
            ("patient_record.read", 0.3),
            ("patient_record.update", 0.24),
            ("patient_record.create", 0.06),
        ),
    ),
    "front_desk": (
        0.22,
        0.9,
        (
            ("patient_record.read", 0.42),
            ("patient_record.update", 0.28),
            ("patient_record.create", 0.14),
            ("chart.view", 0.16),
        ),
    ),
    "billing": (
        0.14,
        0.8,
        (
            ("patient_record.read", 0.6),
            ("chart.view", 0.25),
            ("chart.print", 0.15),
        ),
    ),
    "practice_admin": (
        0.06,
        0.6,
        (
            ("patient_record.read", 0.55),
            ("chart.view", 0.3),
            ("patient_record.update", 0.15),
        ),
    ),
}

CHART_SECTIONS = (
    "summary",
    "medications",
    "allergies",
    "problems",
    "labs",
    "vitals",
    "immunizations",
    "notes",
    "imaging",
    "care_plan",
)
RECORD_FIELDS = (
    "phone",
    "address",
    "email",
    "insurance",
    "emergency_contact",
    "preferred_pharmacy",
    "allergies",
    "primary_provider",
)
NOTE_TYPES = ("SOAP", "progress", "procedure", "telehealth", "follow-up")

BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
)

API_CLIENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "EHR Sync Bridge",
        "EhrBridge/4.2",
        (
            "GET /v1/patients/{p}",
            "GET /v1/patients/{p}/encounters",
            "POST /v1/encounters",
            "GET /v1/encounters/{e}/notes",
        ),
    ),
    (
        "Billing Export",
        "BillingExport/2.7 python-requests/2.32",
        (
            "GET /v1/encounters/{e}/codes",
            "GET /v1/patients/{p}/insurance",
            "GET /v1/claims",
        ),
    ),
    (
        "Scheduling Kiosk",
        "KioskApp/1.9 (Android 14)",
        (
            "GET /v1/appointments",
            "POST /v1/appointments",
            "GET /v1/patients/{p}",
        ),
    ),
)

UNKNOWN_EMAILS = (
    "admin@{domain}",
    "test@{domain}",
    "info@{domain}",
    "root@{domain}",
    "billing@{domain}",
    "dr.smith@{domain}",
)
