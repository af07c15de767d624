"""The demo shop's engine: the model behind ``generate_shop`` and ``simulate_shop``.

The shop is a generative model, not a replay of random rows, so that the lakehouse's models have
real signal to find and exact ground truth to be judged by. In short:

* every customer has a latent purchase rate, dissatisfaction and churn hazard (customers.py) and
  buys on a seasonal, weekly, hourly clock shaped by promotions (intensity.py, promotions.py);
* everything that happens to an order later (payment, shipment, delivery, returns, chargeback,
  tickets) is planned when it is placed (lifecycle.py, tickets.py) and the source shows those plans
  as of the shop's current time (plans.py);
* it is vectorised (numpy + pyarrow): purchases are Poisson processes sampled by inverse-CDF of
  the cumulative intensity, never by looping over customer-days.

Where things are:

    engine.py          a run: the steps in order, and what they share
    state.py           what a run continues from, saved in truth_dir/engine/
    config.py          ShopConfig: size, seed, and the options that make hard shops (profiles)
    reference_data.py  countries, currencies, categories, carriers, code lists (and the dbt seed)
    word_lists.py      names, cities, e-mail domains, product words, notes, ticket texts
    intensity.py       the purchase intensity over time and by category
    promotions.py      site-wide and flash sales, planned ahead
    fx_rates.py        daily exchange rates
    catalog.py         categories, products, inventory
    customers.py       sign-ups and latent customer behaviour
    orders.py          orders and lines: timing, products, prices, discounts, channels
    fraud.py           the true fraud model
    lifecycle.py       payments, cancellations, shipments, deliveries, returns, refunds, chargebacks
    tickets.py         support tickets
    plans.py           plans projected onto the source: inserts and updates
    web_sessions.py    who visits, when, and how far down the funnel
    web_events.py      the clickstream of those sessions
    dirty_rows.py      planted data-quality violations and their record
    hard_deletes.py    GDPR erasure and abandoned-cart retention (simulate only)
    churn.py           the churn ground truth
    truth.py           the ground truth files
    writer.py          writing to the source database
    clock.py           times and days
    frames.py          the engine's tables: dicts of numpy arrays
    columns.py         Arrow columns in the source contract's types
    sampling.py        named random streams, categorical draws
    cards.py           payment card numbers
"""
