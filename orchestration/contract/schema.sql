-- The shop's OLTP schema (MySQL 8 / MariaDB 10.6+). Rendered from orchestration/contract/schema.py.
-- Every table has a primary key and updated_at DATETIME(3), the extraction cursor.

-- Registered shoppers. Erased on request (GDPR): the row and all their activity are hard deleted.
CREATE TABLE IF NOT EXISTS `customers` (
  `customer_id` BIGINT NOT NULL COMMENT 'surrogate key',
  `email` VARCHAR(255) NULL COMMENT 'login e-mail (PII)',
  `first_name` VARCHAR(100) NOT NULL COMMENT 'given name (PII), utf8mb4',
  `last_name` VARCHAR(100) NOT NULL COMMENT 'family name (PII), utf8mb4',
  `country` CHAR(2) NULL COMMENT 'ISO 3166-1 alpha-2 country of residence',
  `city` VARCHAR(100) NOT NULL COMMENT 'city of residence',
  `acquisition_channel` VARCHAR(20) NOT NULL COMMENT 'organic | paid_search | social | email | referral | marketplace',
  `marketing_opt_in` TINYINT(1) NOT NULL COMMENT 'consented to marketing e-mail',
  `birth_date` DATE NULL COMMENT 'date of birth; legacy rows may hold the zero date',
  `created_at` DATETIME(3) NOT NULL COMMENT 'sign-up time',
  `updated_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT 'last change of the row, millisecond precision; the extraction cursor',
  PRIMARY KEY (`customer_id`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Registered shoppers. Erased on request (GDPR): the row and all their activity are hard deleted.';

-- Product categories, each with its own price level, seasonality and return rate.
CREATE TABLE IF NOT EXISTS `categories` (
  `category_id` INT NOT NULL COMMENT 'surrogate key',
  `name` VARCHAR(100) NOT NULL COMMENT 'category name',
  `department` VARCHAR(100) NOT NULL COMMENT 'top-level department',
  `updated_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT 'last change of the row, millisecond precision; the extraction cursor',
  PRIMARY KEY (`category_id`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Product categories, each with its own price level, seasonality and return rate.';

-- The catalogue. Prices are list prices in USD; orders carry the local price actually charged.
CREATE TABLE IF NOT EXISTS `products` (
  `product_id` BIGINT NOT NULL COMMENT 'surrogate key',
  `sku` VARCHAR(32) NOT NULL COMMENT 'stock keeping unit',
  `name` VARCHAR(255) NOT NULL COMMENT 'product name',
  `category_id` INT NOT NULL COMMENT 'categories.category_id',
  `list_price_usd` DECIMAL(12,2) NOT NULL COMMENT 'list price in USD',
  `unit_cost_usd` DECIMAL(12,2) NOT NULL COMMENT 'landed unit cost in USD',
  `is_active` TINYINT(1) NOT NULL COMMENT 'currently sold',
  `attributes` JSON NULL COMMENT 'free-form attributes (colour, size, brand)',
  `created_at` DATETIME(3) NOT NULL COMMENT 'when the product was listed',
  `updated_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT 'last change of the row, millisecond precision; the extraction cursor',
  PRIMARY KEY (`product_id`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='The catalogue. Prices are list prices in USD; orders carry the local price actually charged.';

-- Stock on hand per product (one warehouse). Updated in place on every sale and restock.
CREATE TABLE IF NOT EXISTS `inventory` (
  `product_id` BIGINT NOT NULL COMMENT 'products.product_id',
  `quantity_on_hand` INT NOT NULL COMMENT 'units in stock',
  `reorder_point` INT NOT NULL COMMENT 'stock level that should trigger a reorder',
  `last_restocked_at` DATETIME(3) NULL COMMENT 'last restock',
  `updated_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT 'last change of the row, millisecond precision; the extraction cursor',
  PRIMARY KEY (`product_id`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Stock on hand per product (one warehouse). Updated in place on every sale and restock.';

-- Planned promotions: site-wide or for one category. Known in advance, so forecasts may use them.
CREATE TABLE IF NOT EXISTS `promotions` (
  `promotion_id` INT NOT NULL COMMENT 'surrogate key',
  `promo_code` VARCHAR(32) NOT NULL COMMENT 'code customers enter',
  `category_id` INT NULL COMMENT 'category on promotion; NULL for site-wide',
  `discount_pct` DECIMAL(5,2) NOT NULL COMMENT 'discount in percent',
  `starts_on` DATE NOT NULL COMMENT 'first day',
  `ends_on` DATE NOT NULL COMMENT 'last day (inclusive)',
  `updated_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT 'last change of the row, millisecond precision; the extraction cursor',
  PRIMARY KEY (`promotion_id`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Planned promotions: site-wide or for one category. Known in advance, so forecasts may use them.';

-- Orders in the shopper's local currency. Status moves placed -> paid -> shipped -> delivered (or cancelled / returned) after insert.
CREATE TABLE IF NOT EXISTS `orders` (
  `order_id` BIGINT NOT NULL COMMENT 'surrogate key',
  `customer_id` BIGINT NULL COMMENT 'customers.customer_id',
  `ordered_at` DATETIME(3) NULL COMMENT 'when the order was placed',
  `status` VARCHAR(20) NOT NULL COMMENT 'placed | paid | shipped | delivered | cancelled | returned',
  `channel` VARCHAR(20) NOT NULL COMMENT 'web | mobile_app | marketplace',
  `currency` CHAR(3) NOT NULL COMMENT 'ISO 4217 currency of all amounts',
  `shipping_country` CHAR(2) NOT NULL COMMENT 'destination country',
  `promo_code` VARCHAR(32) NULL COMMENT 'promotions.promo_code applied',
  `subtotal` DECIMAL(12,2) NOT NULL COMMENT 'sum of item lines after line discounts',
  `discount` DECIMAL(12,2) NOT NULL COMMENT 'order-level discount',
  `shipping_fee` DECIMAL(12,2) NOT NULL COMMENT 'shipping charged',
  `total` DECIMAL(12,2) NOT NULL COMMENT 'subtotal - discount + shipping_fee',
  `notes` TEXT NULL COMMENT 'free text typed by the shopper at checkout',
  `updated_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT 'last change of the row, millisecond precision; the extraction cursor',
  PRIMARY KEY (`order_id`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Orders in the shopper''s local currency. Status moves placed -> paid -> shipped -> delivered (or cancelled / returned) after insert.';

-- Order lines. unit_price is the local price charged per unit before the line discount.
CREATE TABLE IF NOT EXISTS `order_items` (
  `order_item_id` BIGINT NOT NULL COMMENT 'surrogate key',
  `order_id` BIGINT NOT NULL COMMENT 'orders.order_id',
  `product_id` BIGINT NULL COMMENT 'products.product_id',
  `quantity` INT NOT NULL COMMENT 'units ordered',
  `unit_price` DECIMAL(12,2) NOT NULL COMMENT 'local price per unit',
  `line_discount` DECIMAL(12,2) NOT NULL COMMENT 'discount on the line',
  `updated_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT 'last change of the row, millisecond precision; the extraction cursor',
  PRIMARY KEY (`order_item_id`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Order lines. unit_price is the local price charged per unit before the line discount.';

-- Payment attempts. card_number holds the full PAN at the source: the PCI risk Shoplake contains. Fraud surfaces weeks later as status chargeback.
CREATE TABLE IF NOT EXISTS `payments` (
  `payment_id` BIGINT NOT NULL COMMENT 'surrogate key',
  `order_id` BIGINT NOT NULL COMMENT 'orders.order_id',
  `method` VARCHAR(20) NOT NULL COMMENT 'card | paypal | bank_transfer',
  `card_number` VARCHAR(19) NULL COMMENT 'full card number (PAN); tokenized in flight',
  `card_country` CHAR(2) NULL COMMENT 'issuing country of the card',
  `ip_country` CHAR(2) NOT NULL COMMENT 'country of the shopper''s IP address',
  `device_type` VARCHAR(20) NOT NULL COMMENT 'desktop | mobile | tablet',
  `amount` DECIMAL(12,2) NOT NULL COMMENT 'amount in the order currency',
  `currency` CHAR(3) NOT NULL COMMENT 'ISO 4217',
  `status` VARCHAR(20) NOT NULL COMMENT 'captured | failed | refunded | chargeback',
  `paid_at` DATETIME(3) NOT NULL COMMENT 'authorisation time',
  `chargeback_at` DATETIME(3) NULL COMMENT 'when the issuer reported a chargeback',
  `updated_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT 'last change of the row, millisecond precision; the extraction cursor',
  PRIMARY KEY (`payment_id`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Payment attempts. card_number holds the full PAN at the source: the PCI risk Shoplake contains. Fraud surfaces weeks later as status chargeback.';

-- One shipment per shipped order.
CREATE TABLE IF NOT EXISTS `shipments` (
  `shipment_id` BIGINT NOT NULL COMMENT 'surrogate key',
  `order_id` BIGINT NOT NULL COMMENT 'orders.order_id',
  `carrier` VARCHAR(40) NOT NULL COMMENT 'carrier name',
  `shipped_at` DATETIME(3) NOT NULL COMMENT 'handed to the carrier',
  `promised_at` DATETIME(3) NOT NULL COMMENT 'delivery promised to the shopper',
  `delivered_at` DATETIME(3) NULL COMMENT 'delivered; NULL while in transit',
  `status` VARCHAR(20) NOT NULL COMMENT 'in_transit | delivered',
  `updated_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT 'last change of the row, millisecond precision; the extraction cursor',
  PRIMARY KEY (`shipment_id`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='One shipment per shipped order.';

-- Returned units of an order line, with the refund in the order currency.
CREATE TABLE IF NOT EXISTS `returns` (
  `return_id` BIGINT NOT NULL COMMENT 'surrogate key',
  `order_item_id` BIGINT NOT NULL COMMENT 'order_items.order_item_id',
  `quantity` INT NOT NULL COMMENT 'units returned',
  `reason` VARCHAR(40) NOT NULL COMMENT 'damaged | wrong_size | not_as_described | changed_mind | late_delivery',
  `refund_amount` DECIMAL(12,2) NOT NULL COMMENT 'refund in the order currency',
  `returned_at` DATETIME(3) NOT NULL COMMENT 'when the return was received',
  `updated_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT 'last change of the row, millisecond precision; the extraction cursor',
  PRIMARY KEY (`return_id`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Returned units of an order line, with the refund in the order currency.';

-- Customer service tickets. body is free text: shoppers sometimes paste card numbers into it.
CREATE TABLE IF NOT EXISTS `support_tickets` (
  `ticket_id` BIGINT NOT NULL COMMENT 'surrogate key',
  `customer_id` BIGINT NOT NULL COMMENT 'customers.customer_id',
  `order_id` BIGINT NULL COMMENT 'orders.order_id the ticket is about',
  `topic` VARCHAR(40) NOT NULL COMMENT 'delivery | refund | product | payment | account',
  `body` TEXT NOT NULL COMMENT 'the shopper''s message',
  `status` VARCHAR(20) NOT NULL COMMENT 'open | resolved',
  `satisfaction` SMALLINT NULL COMMENT '1-5 rating after resolution',
  `created_at` DATETIME(3) NOT NULL COMMENT 'opened',
  `resolved_at` DATETIME(3) NULL COMMENT 'resolved',
  `updated_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT 'last change of the row, millisecond precision; the extraction cursor',
  PRIMARY KEY (`ticket_id`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Customer service tickets. body is free text: shoppers sometimes paste card numbers into it.';

-- Clickstream: session_start, product_view, add_to_cart, checkout, purchase. Abandoned carts are hard deleted after 30 days.
CREATE TABLE IF NOT EXISTS `web_events` (
  `event_id` BIGINT NOT NULL COMMENT 'surrogate key',
  `session_id` VARCHAR(36) NOT NULL COMMENT 'visit identifier',
  `customer_id` BIGINT NULL COMMENT 'logged-in customer',
  `event_type` VARCHAR(20) NOT NULL COMMENT 'session_start | product_view | add_to_cart | checkout | purchase',
  `product_id` BIGINT NULL COMMENT 'product viewed or added',
  `order_id` BIGINT NULL COMMENT 'order placed (purchase events)',
  `channel` VARCHAR(20) NOT NULL COMMENT 'web | mobile_app',
  `traffic_source` VARCHAR(20) NOT NULL COMMENT 'organic | paid_search | social | email | referral | direct',
  `device_type` VARCHAR(20) NOT NULL COMMENT 'desktop | mobile | tablet',
  `country` CHAR(2) NOT NULL COMMENT 'country of the visitor',
  `occurred_at` DATETIME(3) NOT NULL COMMENT 'event time',
  `properties` JSON NULL COMMENT 'event payload',
  `updated_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT 'last change of the row, millisecond precision; the extraction cursor',
  PRIMARY KEY (`event_id`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Clickstream: session_start, product_view, add_to_cart, checkout, purchase. Abandoned carts are hard deleted after 30 days.';

-- Daily exchange rates: units of USD per one unit of currency.
CREATE TABLE IF NOT EXISTS `fx_rates` (
  `rate_date` DATE NOT NULL COMMENT 'day the rate applies to',
  `currency` CHAR(3) NOT NULL COMMENT 'ISO 4217',
  `usd_per_unit` DECIMAL(18,8) NOT NULL COMMENT 'USD for one unit of the currency',
  `updated_at` DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT 'last change of the row, millisecond precision; the extraction cursor',
  PRIMARY KEY (`rate_date`, `currency`),
  KEY `ix_updated_at` (`updated_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='Daily exchange rates: units of USD per one unit of currency.';

