"""The words the shop's text columns are made of: names, cities, e-mail domains, product names,
order notes, support ticket bodies, web event properties.

Deliberately international (accents, CJK, a name outside the Basic Multilingual Plane, emoji) so
that every text path of the pipeline meets real-world Unicode, including 4-byte UTF-8.
"""

from __future__ import annotations

from demo_shop.reference_data import CATEGORIES


def _pairs(text: str) -> tuple[tuple[str, str], ...]:
    """Parse "Jürgen/juergen, Lena": e-mail handles need ASCII, so a name may carry its own spelling."""
    out = []
    for item in text.split(","):
        display, _, ascii_ = item.strip().partition("/")
        out.append((display, ascii_ or display.lower().replace(" ", "").replace("'", "")))
    return tuple(out)


# Names as (display, ascii for the e-mail handle), by language: (first names, last names).
NAMES: dict[str, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]] = {}
NAMES["en"] = (
    _pairs("James, Olivia, Liam, Emma, Noah, Ava, William, Sophia, Lucas, Mia, Ethan, Chloe, Oliver, Grace, Jack, Zoe"),
    _pairs(
        "Smith, Johnson, Brown, Taylor, Wilson, Martin, Anderson, Thompson, O'Brien, Walker, Clarke, Murphy, Robinson, Campbell"
    ),
)
NAMES["de"] = (
    _pairs(
        "Jürgen/juergen, Lena, Lukas, Anna, Jonas, Sophie, Maximilian, Hannah, Felix, Marie, Jörg/joerg, Käthe/kaethe"
    ),
    _pairs(
        "Müller/mueller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schäfer/schaefer, Koch, Groß/gross"
    ),
)
NAMES["fr"] = (
    _pairs(
        "François/francois, Camille, Léa/lea, Hugo, Chloé/chloe, Louis, Inès/ines, Jules, Zoé/zoe, Gabriel, Océane/oceane"
    ),
    _pairs("Martin, Bernard, Dubois, Lefèvre/lefevre, Moreau, Laurent, Girard, Roux, Fournier, Bonnet"),
)
NAMES["es"] = (
    _pairs(
        "José/jose, María/maria, Sofía/sofia, Alejandro, Lucía/lucia, Mateo, Valentina, Diego, Camila, Javier, Ximena"
    ),
    _pairs(
        "García/garcia, Rodríguez/rodriguez, Martínez/martinez, López/lopez, Hernández/hernandez, González/gonzalez, Pérez/perez, Núñez/nunez, Sánchez/sanchez"
    ),
)
NAMES["it"] = (
    _pairs("Giulia, Lorenzo, Niccolò/niccolo, Chiara, Matteo, Francesca, Alessandro, Sofia, Leonardo, Martina"),
    _pairs("Rossi, Russo, Ferrari, Esposito, Bianchi, Romano, Colombo, Ricci, Marino, Bruno"),
)
NAMES["nl"] = (
    _pairs("Daan, Emma, Sem, Julia, Lieke, Bram, Sanne, Thijs, Fleur, Ruben"),
    _pairs(
        "de Jong/dejong, Jansen, de Vries/devries, van den Berg/vandenberg, Bakker, Visser, Smit, Meijer, de Boer/deboer, Mulder"
    ),
)
NAMES["ja"] = (
    _pairs("翔太/shota, 陽菜/hina, 蓮/ren, 結衣/yui, 大翔/hiroto, 美咲/misaki, 悠真/yuma, さくら/sakura"),
    # 𠮷 (U+20BB7) is outside the BMP: a 4-byte UTF-8 name, the classic utf8mb4 test.
    _pairs("佐藤/sato, 鈴木/suzuki, 高橋/takahashi, 田中/tanaka, 𠮷田/yoshida, 渡辺/watanabe, 伊藤/ito, 山本/yamamoto"),
)
NAMES["in"] = (
    _pairs("Aarav, Ananya, Vihaan, Diya, Arjun, Isha, Rohan, Priya, Kabir, Saanvi"),
    _pairs("Sharma, Patel, Singh, Kumar, Gupta, Reddy, Iyer, Nair, Mehta, Das"),
)
NAMES["pt"] = (
    _pairs("João/joao, Ana, Gabriel, Beatriz, Lucas, Júlia/julia, Pedro, Larissa, Thiago, Letícia/leticia"),
    _pairs(
        "Silva, Santos, Oliveira, Souza, Conceição/conceicao, Pereira, Ferreira, Almeida, Gonçalves/goncalves, Araújo/araujo"
    ),
)
COUNTRY_LANGUAGE = {
    "US": "en",
    "CA": "en",
    "GB": "en",
    "AU": "en",
    "DE": "de",
    "FR": "fr",
    "ES": "es",
    "MX": "es",
    "IT": "it",
    "NL": "nl",
    "JP": "ja",
    "IN": "in",
    "BR": "pt",
}
CITIES = {
    "US": "New York, Los Angeles, Chicago, Houston, Seattle, Austin, Denver, Boston",
    "CA": "Toronto, Montréal, Vancouver, Calgary, Ottawa",
    "GB": "London, Manchester, Birmingham, Leeds, Glasgow, Bristol",
    "DE": "Berlin, München, Hamburg, Köln, Frankfurt am Main, Düsseldorf",
    "FR": "Paris, Lyon, Marseille, Toulouse, Nice, Nantes",
    "ES": "Madrid, Barcelona, Valencia, Sevilla, Málaga, Bilbao",
    "IT": "Roma, Milano, Napoli, Torino, Firenze, Bologna",
    "NL": "Amsterdam, Rotterdam, Den Haag, Utrecht, Eindhoven",
    "JP": "東京, 大阪, 横浜, 名古屋, 札幌, 福岡",
    "AU": "Sydney, Melbourne, Brisbane, Perth, Adelaide",
    "IN": "Mumbai, Delhi, Bengaluru, Hyderabad, Chennai, Pune",
    "BR": "São Paulo, Rio de Janeiro, Belo Horizonte, Brasília, Curitiba, Porto Alegre",
    "MX": "Ciudad de México, Guadalajara, Monterrey, Puebla, Tijuana, Mérida",
}
COMMON_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "hotmail.com")
LOCAL_DOMAINS = {
    "GB": ("hotmail.co.uk", "btinternet.com"),
    "DE": ("web.de", "gmx.de"),
    "FR": ("orange.fr", "free.fr"),
    "ES": ("hotmail.es", "telefonica.net"),
    "MX": ("yahoo.com.mx", "prodigy.net.mx"),
    "IT": ("libero.it", "virgilio.it"),
    "NL": ("ziggo.nl", "kpnmail.nl"),
    "JP": ("yahoo.co.jp", "docomo.ne.jp"),
    "AU": ("bigpond.com", "optusnet.com.au"),
    "IN": ("rediffmail.com", "yahoo.co.in"),
    "BR": ("uol.com.br", "bol.com.br"),
    "CA": ("rogers.com", "shaw.ca"),
    "US": ("aol.com", "comcast.net"),
}
MALFORMED_EMAILS = ("{h}@@{d}", "{h}.{d}", "{h} @{d}", "{h}@{dn}", "@{d}", "{h}@{d}.", "{h}@{d},com", "{h}(at){d}")

PRODUCT_WORDS = {
    "ELE": (
        "Wireless Headphones, Bluetooth Speaker, Smartwatch, 4K Monitor, Action Camera, E-Reader, Power Bank, Noise-Cancelling Earbuds, Smart Home Hub, Mechanical Keyboard, Gaming Mouse, Tablet",
        "Pro, Max, Lite, Ultra, Air, Mini, Plus, Neo",
    ),
    "HOM": (
        "Chef's Knife, Cast Iron Skillet, French Press, Espresso Maker, Linen Duvet Cover, Scented Candle, Ceramic Vase, Stand Mixer, Bamboo Cutting Board, Crème Brûlée Torch",
        "Classic, Nordic, Rustic, Modern, Artisan, Everyday",
    ),
    "APP": (
        "Merino Sweater, Denim Jacket, Linen Shirt, Hoodie, Rain Coat, Chinos, Summer Dress, Puffer Vest, Graphic Tee, Wool Scarf",
        "Relaxed, Slim, Oversized, Organic, Vintage, Essential",
    ),
    "SHO": (
        "Running Shoes, Leather Boots, Canvas Sneakers, Trail Runners, Loafers, Sandals, Hiking Boots, Slip-Ons",
        "Cloud, Trek, Urban, Classic, Sprint, Terra",
    ),
    "BOO": (
        "Cookbook, Mystery Novel, Sci-Fi Anthology, Travel Guide, Children's Picture Book, Biography, Poetry Collection, Graphic Novel, Field Guide",
        "Collected, Illustrated, Pocket, Deluxe, Annotated, First",
    ),
    "TOY": (
        "Building Blocks Set, Puzzle 1000 pieces, Board Game, Plush Bear, Remote Control Car, Science Kit, Wooden Train, Card Game, Dollhouse",
        "Family, Junior, Deluxe, Classic, Party, Explorer",
    ),
    "GAR": (
        "Garden Hose, Raised Bed Kit, Pruning Shears, Solar Lights, Hammock, Bird Feeder, Compost Bin, Patio Heater, Seed Starter Kit",
        "Weatherproof, Heavy-Duty, Eco, Compact, Premium",
    ),
    "SPO": (
        "Yoga Mat, Adjustable Dumbbells, Resistance Bands, Cycling Helmet, Water Bottle, Running Vest, Tennis Racket, Foam Roller, Camping Tent",
        "Pro, Active, Endurance, Trail, Studio, Performance",
    ),
    "BEA": (
        "Face Serum, Shampoo, Hand Cream, Eau de Parfum, Lip Balm, Sunscreen SPF 50, Beard Oil, Sheet Masks, Body Lotion",
        "Hydrating, Gentle, Botanical, Repair, Daily, Sensitive",
    ),
    "GRO": (
        "Single-Origin Coffee, Matcha Powder, Olive Oil, Dark Chocolate, Hot Sauce, Granola, Loose Leaf Tea, Maple Syrup, Spice Set",
        "Organic, Artisan, Fair Trade, Smoked, Roasted, Wild",
    ),
    "JEW": (
        "Silver Necklace, Gold Hoop Earrings, Chronograph Watch, Charm Bracelet, Signet Ring, Pearl Studs, Automatic Watch",
        "Heritage, Minimal, Classic, Luxe, Vintage",
    ),
}
BRANDS = (
    "Nimbus",
    "Acorn & Co",
    "Lumière",
    "Kōbō",
    "Northwind",
    "Brightline",
    "Fjällhus",
    "Verde",
    "Atlas",
    "Solstice",
    "Maison Lune",
    "Tidewater",
    "Zephyr",
    "Okapi",
    "Hanami",
)
COLOURS = ("black", "white", "navy", "sage", "terracotta", "sand", "charcoal", "burgundy", "ivory", "olive")
MATERIALS = (
    "cotton",
    "merino wool",
    "recycled polyester",
    "stainless steel",
    "oak",
    "ceramic",
    "bamboo",
    "leather",
    "aluminium",
)
BADGES = ("🔥 Bestseller", "🌱 Eco choice", "⭐ Top rated", "🎁 Gift idea", "✨ New")  # 🔥 🌱 🎁 are 4-byte UTF-8
NAME_EMOJI = (" 🎁", " 🔥", " 🌿", " ⚡", " 🎧")

NOTES = (
    "Please leave the parcel at the front door.",
    "Gift wrap please 🎁",
    "Ring the bell twice, the buzzer is broken.",
    "Deliver after 6pm please.",
    "Es un regalo, ¡gracias!",
    "Bitte beim Nachbarn abgeben.",
    "置き配でお願いします",
    "No plastic packaging please ♻️",
    "Leave with the concierge.",
    "Happy birthday Mum! 🎂",
)
TICKET_BODIES = {
    "delivery": (
        "Hi, my order #{o} was due on {d} and it still has not arrived. Can you check with {c}?",
        "Where is my parcel? Order #{o}, the tracking has not moved for days.",
        "Mi pedido #{o} llega tarde, ¿pueden ayudarme?",
        "Order #{o} is late again. This is the second time 😠",
    ),
    "refund": (
        "I sent back items from order #{o} but I have not received my refund yet.",
        "Return for order #{o}: when will the money be back on my account?",
        "Rückerstattung für Bestellung #{o} fehlt noch.",
    ),
    "product": (
        "The item from order #{o} arrived damaged 😞",
        "The product in order #{o} does not match the description.",
        "Das Produkt aus Bestellung #{o} funktioniert nicht.",
        "Wrong colour delivered for order #{o}.",
    ),
    "payment": (
        "My payment for order #{o} failed but I think I was charged anyway.",
        "Checkout keeps declining my payment, order #{o}.",
        "I was charged twice for order #{o}?",
    ),
    "account": (
        "I cannot log in to my account, please reset it.",
        "Please update my delivery address.",
        "How do I unsubscribe from the newsletter?",
        "Please remove my saved payment details.",
        "Can I merge my two accounts?",
    ),
}
CARD_NOTES = (
    "Please use my card {card} for this order",
    "charge card {card} not paypal",
    "Card: {card}",
    "pls bill {card} thx",
)
CARD_TICKETS = (
    "{body} My card number is {card} if you need it.",
    "{body} Please refund to card {card}, thanks.",
    "{body} The card was {card}.",
    "I was charged twice on {card}! {body}",
)
LANDING_PAGES = ("/", "/search", "/deals", "/new", "/account") + tuple(
    f"/c/{c.name.lower().replace(' & ', '-').replace(' ', '-')}" for c in CATEGORIES
)
VIEW_LISTS = ("search", "category", "recommendations", "home", "deals")
