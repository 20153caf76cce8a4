#!/usr/bin/env python3
"""Generate the sample insurance-claims data set for Curation Studio.

Deterministic, standard library only (runs with a plain python3.11):

    python sample_data/generate.py [--seed 2026] [--n 3000] [--out sample_data]
    python sample_data/generate.py --stats      # print realised counts as JSON, write nothing
    python sample_data/generate.py --update-readme   # refresh the stats block in README.md

Outputs (in --out):
    claims.csv            ~80% of the rows
    claims_batch2.jsonl   the remaining ~20% (same keys; every value a string or null)
    truth.jsonl           ground truth, one line per data row, keyed by (file, row)
    curation.yaml         the workspace config the ingest step reads

The story: an insurer's claim notes (prompt), the summaries written for them (response) and a noisy
``claim_type`` from a legacy system. Flaws (duplicates, near duplicates, hard negatives,
hallucinated / leaking / wrong-state / empty / too-short summaries, PII in notes) are injected at the
rates in ``RATES`` and every injection is recorded in truth.jsonl, which benchmarks score against.
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import json
import os
import random
import re
import sys
import unicodedata

# --------------------------------------------------------------------------------------------
# Configuration (exported; tests and docs read these)
# --------------------------------------------------------------------------------------------

SEED = 2026
N_ROWS = 3000
CSV_FRACTION = 0.80          # first 80% of rows (in generation order) go to claims.csv
GOLD_FRACTION = 0.20         # rows chosen uniformly at random get gold_* labels
CSV_FILE = "claims.csv"
JSONL_FILE = "claims_batch2.jsonl"
TRUTH_FILE = "truth.jsonl"
CONFIG_FILE = "curation.yaml"
OUTPUT_FILES = (CSV_FILE, JSONL_FILE, TRUTH_FILE, CONFIG_FILE)

CLAIM_TYPES = ("auto_collision", "property_water", "property_fire", "theft", "medical_injury")
QUALITY_CLASSES = ("ACCEPT", "REJECT")

COLUMNS = (
    "claim_id", "policy_id", "state", "claim_date", "amount", "adjuster",
    "note", "summary", "claim_type", "gold_claim_type", "gold_summary_quality",
)

FLAWS = (
    "exact_duplicate", "near_duplicate", "hard_negative",
    "hallucinated_amount", "hallucinated_name",
    "empty", "too_short", "pii_in_note", "pii_in_summary", "wrong_state", "copies_note",
)

# Flaws that make the summary (the fine-tuning response) unacceptable -> true quality REJECT.
REJECT_FLAWS = (
    "hallucinated_amount", "hallucinated_name", "empty", "too_short",
    "pii_in_summary", "wrong_state", "copies_note",
)

# Configured rate of each flaw, as a fraction of ALL rows. Counts are exact: round(rate * n) rows
# get the flaw. Exact/near duplicates and hard negatives are otherwise clean rows. The summary-side
# flaws (hallucinated_*, empty, too_short, pii_in_summary, wrong_state, copies_note) are mutually
# exclusive; pii_in_summary rows are a subset of pii_in_note rows; the other pii_in_note rows may
# co-occur with hallucinated_* or wrong_state.
RATES = {
    "exact_duplicate": 0.08,
    "near_duplicate": 0.08,
    "hard_negative": 0.05,
    "hallucinated_amount": 0.05,
    "hallucinated_name": 0.05,
    "empty": 0.01,
    "too_short": 0.02,
    "pii_in_note": 0.05,
    "pii_in_summary": 0.02,
    "wrong_state": 0.02,
    "copies_note": 0.015,
}
HALLUCINATED_RATE = RATES["hallucinated_amount"] + RATES["hallucinated_name"]   # ~10%

# claim_type noise model (legacy system label). Each distinct claim draws its raw label once
# (exact and near duplicates inherit it: same claim, same legacy record):
#   1. systematic: if the claim's scenario has an entry in SYSTEMATIC_CONFUSIONS, with that
#      probability the raw label is the confused class;
#   2. random: otherwise, with probability RANDOM_NOISE_RATE the raw label is one of the 4 wrong
#      classes, uniformly.
# Together this gives ~LABEL_NOISE_TARGET wrong raw labels (see --stats for the realised rates).
SYSTEMATIC_CONFUSIONS = {
    # scenario: (wrong class the legacy system picks, probability)
    "theft/vehicle_breakin": ("auto_collision", 0.60),
    "theft/catalytic_converter": ("auto_collision", 0.50),
    "theft/stolen_vehicle": ("auto_collision", 0.35),
    "property_water/firefighting_water": ("property_fire", 0.70),
    "property_water/sprinkler_misfire": ("property_fire", 0.40),
    "property_fire/sprinkler_contained": ("property_water", 0.35),
    "medical_injury/auto_passenger": ("auto_collision", 0.60),
    "medical_injury/kitchen_burn": ("property_fire", 0.45),
    "auto_collision/flooded_road": ("property_water", 0.40),
}
RANDOM_NOISE_RATE = 0.14
LABEL_NOISE_TARGET = 0.25

MIN_DUP_POSITION = 25        # duplicates / hard negatives only after this many rows exist

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

STATES = {
    "TX": "Texas", "CA": "California", "FL": "Florida", "GA": "Georgia", "NY": "New York",
    "IL": "Illinois", "OH": "Ohio", "PA": "Pennsylvania", "NC": "North Carolina",
    "AZ": "Arizona", "CO": "Colorado", "WA": "Washington", "OR": "Oregon", "MI": "Michigan",
    "MN": "Minnesota", "TN": "Tennessee", "MO": "Missouri", "VA": "Virginia", "MA": "Massachusetts",
    "NJ": "New Jersey", "LA": "Louisiana", "OK": "Oklahoma", "WI": "Wisconsin", "UT": "Utah",
    "NV": "Nevada", "SC": "South Carolina", "AL": "Alabama", "KY": "Kentucky", "IN": "Indiana",
    "IA": "Iowa",
}
STATE_CODES = tuple(STATES)

TOWNS = (
    ("Austin", "TX"), ("Round Rock", "TX"), ("San Marcos", "TX"), ("Plano", "TX"), ("Lubbock", "TX"),
    ("El Paso", "TX"), ("Sacramento", "CA"), ("Fresno", "CA"), ("Pasadena", "CA"), ("Redding", "CA"),
    ("Santa Rosa", "CA"), ("Tampa", "FL"), ("Ocala", "FL"), ("Gainesville", "FL"),
    ("Fort Myers", "FL"), ("Marietta", "GA"), ("Savannah", "GA"), ("Athens", "GA"),
    ("Albany", "NY"), ("Buffalo", "NY"), ("Ithaca", "NY"), ("Naperville", "IL"),
    ("Peoria", "IL"), ("Joliet", "IL"), ("Dayton", "OH"), ("Toledo", "OH"), ("Akron", "OH"),
    ("Allentown", "PA"), ("Erie", "PA"), ("Lancaster", "PA"), ("Raleigh", "NC"),
    ("Asheville", "NC"), ("Wilmington", "NC"), ("Mesa", "AZ"), ("Flagstaff", "AZ"),
    ("Tucson", "AZ"), ("Boulder", "CO"), ("Pueblo", "CO"), ("Fort Collins", "CO"),
    ("Spokane", "WA"), ("Tacoma", "WA"), ("Olympia", "WA"), ("Eugene", "OR"), ("Salem", "OR"),
    ("Bend", "OR"), ("Lansing", "MI"), ("Grand Rapids", "MI"), ("Kalamazoo", "MI"),
    ("Duluth", "MN"), ("Rochester", "MN"), ("Knoxville", "TN"), ("Chattanooga", "TN"),
    ("Springfield", "MO"), ("Columbia", "MO"), ("Roanoke", "VA"), ("Norfolk", "VA"),
    ("Worcester", "MA"), ("Lowell", "MA"), ("Trenton", "NJ"), ("Camden", "NJ"),
    ("Baton Rouge", "LA"), ("Lafayette", "LA"), ("Tulsa", "OK"), ("Norman", "OK"),
    ("Madison", "WI"), ("Green Bay", "WI"), ("Provo", "UT"), ("Ogden", "UT"), ("Reno", "NV"),
    ("Henderson", "NV"), ("Greenville", "SC"), ("Charleston", "SC"), ("Huntsville", "AL"),
    ("Mobile", "AL"), ("Lexington", "KY"), ("Bowling Green", "KY"), ("Bloomington", "IN"),
    ("Fort Wayne", "IN"), ("Cedar Rapids", "IA"), ("Ames", "IA"),
)

FIRST_NAMES = (
    ("Maria", "F"), ("James", "M"), ("Linda", "F"), ("Robert", "M"), ("Patricia", "F"),
    ("Michael", "M"), ("Jennifer", "F"), ("David", "M"), ("Elizabeth", "F"), ("William", "M"),
    ("Susan", "F"), ("Richard", "M"), ("Jessica", "F"), ("Joseph", "M"), ("Sarah", "F"),
    ("Thomas", "M"), ("Karen", "F"), ("Charles", "M"), ("Nancy", "F"), ("Daniel", "M"),
    ("Lisa", "F"), ("Matthew", "M"), ("Betty", "F"), ("Anthony", "M"), ("Sandra", "F"),
    ("Mark", "M"), ("Ashley", "F"), ("Steven", "M"), ("Kimberly", "F"), ("Andrew", "M"),
    ("Emily", "F"), ("Kevin", "M"), ("Donna", "F"), ("Brian", "M"), ("Michelle", "F"),
    ("George", "M"), ("Carol", "F"), ("Edward", "M"), ("Amanda", "F"), ("Ronald", "M"),
    ("Melissa", "F"), ("Timothy", "M"), ("Deborah", "F"), ("Jason", "M"), ("Stephanie", "F"),
    ("Jeffrey", "M"), ("Rebecca", "F"), ("Ryan", "M"), ("Laura", "F"), ("Jacob", "M"),
    ("Priya", "F"), ("Wei", "M"), ("Aisha", "F"), ("Hiroshi", "M"), ("Fatima", "F"),
    ("Diego", "M"), ("Mei", "F"), ("Omar", "M"), ("Ngozi", "F"), ("Tuan", "M"),
    ("José", "M"), ("Zoë", "F"), ("Renée", "F"), ("André", "M"), ("Chloé", "F"), ("Iñaki", "M"),
    ("Siobhan", "F"), ("Rafael", "M"), ("Yolanda", "F"), ("Darnell", "M"),
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Patel", "Chen", "Kim", "Okafor",
    "Yamamoto", "Haddad", "Kowalski", "O'Brien", "Fitzgerald", "Schultz", "Novak", "Ivanova",
    "Müller", "Núñez", "Peña", "Dubois", "Ramírez", "Søndergaard", "Brennan", "Whitfield",
    "Castillo", "Delgado", "Vasquez", "Bishop", "Hawkins", "Pruitt", "Holloway", "Marsh",
)
ADJUSTERS = (
    "K. Patel", "Dana Whitaker", "R. Okonkwo", "Megan Alvarez", "T. Lindqvist", "Greg Hoffman",
    "S. Abernathy", "Luis Cardenas", "J. Moreau", "Paula Stein", "B. Ferreira", "Alan Cho",
    "N. Gallagher", "Yvonne Price", "C. Mbeki", "Howard Tran",
)

VEHICLES = (
    "2019 Honda Civic", "2021 Toyota RAV4", "2016 Ford F-150", "2018 Chevy Malibu",
    "2022 Subaru Outback", "2015 Nissan Altima", "2020 Jeep Grand Cherokee", "2017 Hyundai Elantra",
    "2023 Kia Telluride", "2014 Toyota Camry", "2020 Tesla Model 3", "2012 Honda Odyssey",
    "2019 Ram 1500", "2018 Mazda CX-5", "2021 Ford Explorer", "2016 Toyota Prius",
)
ROADS = (
    "I-35", "Main St", "Route 9", "Elm Ave near 5th St", "Highway 61",
    "the frontage road near exit 212", "Oak Street", "a two-lane county road", "Broadway",
    "the on-ramp to I-90", "Market St", "Lakeshore Dr", "a residential street",
)
PARKING = (
    "in a grocery store parking lot", "in the driveway", "on the street outside the residence",
    "in a downtown parking garage", "at the apartment complex lot", "outside the gym",
    "at a park-and-ride lot", "in the employer's parking lot",
)
SHOPS = (
    "Caliber Collision", "a local body shop", "Maaco", "the dealer body shop", "Gerber Collision",
    "an in-network DRP shop",
)
ROOMS = (
    "kitchen", "finished basement", "upstairs bathroom", "laundry room", "living room",
    "hallway and two bedrooms", "garage", "primary bedroom",
)
ITEMS_HOME = (
    "a laptop, a TV and some jewelry", "two bicycles and power tools", "jewelry and two watches",
    "a gaming console and a camera", "cash and a handgun from the nightstand",
    "a laptop and a tablet", "a generator and a pressure washer", "designer handbags and jewelry",
)
ITEMS_CAR = (
    "a laptop bag", "a purse and sunglasses", "tools from the truck bed", "a backpack with a tablet",
    "golf clubs", "a work laptop and a phone charger", "a camera bag", "a stroller and shopping bags",
)
INJURIES = (
    "a fractured wrist", "a sprained ankle", "a concussion", "bruised ribs", "a torn ACL",
    "lacerations requiring stitches", "a broken arm", "whiplash and back pain",
)

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
MONTHS_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# --------------------------------------------------------------------------------------------
# Scenarios: per claim type, each with short noun phrases (used in the opening sentence and in
# summaries), location phrases and detail sentences. Detail sentences may use:
#   {Ref}/{ref} the claimant (capitalised / mid-sentence), {poss} his/her, {vehicle}, {road},
#   {parking}, {shop}, {room}, {items}, {injury}
# --------------------------------------------------------------------------------------------

SCENARIOS = {
    "auto_collision": [
        dict(key="rear_end", weight=4,
             short=["a rear-end collision", "a rear-end accident at a stoplight"],
             loc=["on {road}"],
             details=[
                 "{Ref} was stopped at a red light when the other vehicle struck the rear of {poss} {vehicle}.",
                 "OV driver admitted fault at scene; rear bumper, trunk lid and tail lamps damaged.",
                 "Police responded; the other driver was cited for following too closely.",
                 "IV drivable but the rear bumper cover is cracked and the hatch will not latch.",
             ]),
        dict(key="t_bone", weight=3,
             short=["an intersection collision", "a T-bone collision"],
             loc=["at {road}", "on {road}"],
             details=[
                 "{Ref} states the other driver ran the stop sign and hit the passenger side of {poss} {vehicle}.",
                 "Both front airbags deployed; IV towed from scene.",
                 "Passenger doors and B-pillar pushed in; possible total loss pending teardown.",
                 "Witness statement supports that the OV failed to yield.",
             ]),
        dict(key="parking_lot", weight=3,
             short=["a parking lot collision", "a low-speed backing accident"],
             loc=["{parking}"],
             details=[
                 "{Ref} was backing out of a space and struck a light pole with {poss} {vehicle}.",
                 "Rear quarter panel dented and the backup camera no longer works.",
                 "No other vehicles involved; single-vehicle collision.",
             ]),
        dict(key="sideswipe", weight=2,
             short=["a sideswipe on the highway", "a lane-change collision"],
             loc=["on {road}"],
             details=[
                 "A box truck merged into {poss} lane and sideswiped the driver side of the {vehicle}.",
                 "Mirror torn off, scrapes along both driver-side doors.",
                 "Other carrier notified; liability appears clear.",
             ]),
        dict(key="deer_strike", weight=2,
             short=["a deer strike", "a collision with a deer"],
             loc=["on {road}"],
             details=[
                 "{Ref} hit a deer at dusk; front bumper, grille and hood damaged on the {vehicle}.",
                 "Radiator leaking, vehicle towed to {shop}.",
             ]),
        dict(key="ice_slide", weight=2,
             short=["a single-car accident on ice", "a slide-off into a guardrail"],
             loc=["on {road}"],
             details=[
                 "Road was icy; {ref} lost control and the {vehicle} slid into the guardrail.",
                 "Front end and driver-side fender damaged; airbags did not deploy.",
             ]),
        dict(key="hit_and_run", weight=2,
             short=["a hit-and-run on a parked car", "damage to a parked vehicle by an unknown driver"],
             loc=["{parking}"],
             details=[
                 "{Ref} returned to find the {vehicle} struck by an unknown vehicle; no note left.",
                 "Rear bumper crushed and paint transfer on the quarter panel.",
                 "Police report filed for the hit-and-run.",
             ]),
        # ambiguous: water vocabulary, but the loss is a vehicle collision
        dict(key="flooded_road", weight=2,
             short=["a collision on a flooded road", "a crash after hydroplaning"],
             loc=["on {road}"],
             details=[
                 "Heavy rain had flooded the road; the {vehicle} hydroplaned through standing water and hit the curb and a signpost.",
                 "Front suspension and wheel damaged in the impact; some water reached the floorboards.",
                 "{Ref} was not injured; vehicle towed to {shop}.",
             ]),
    ],
    "property_water": [
        dict(key="burst_pipe", weight=4,
             short=["a burst pipe", "a frozen pipe that burst"],
             loc=["at the insured dwelling", "at {poss} home"],
             details=[
                 "Supply line in the wall behind the {room} froze and burst overnight.",
                 "Water ran for several hours before {ref} shut off the main; drywall and flooring soaked.",
                 "Standing water in the {room}; ceiling below is sagging and stained.",
             ]),
        dict(key="water_heater", weight=3,
             short=["a water heater failure", "a leaking water heater"],
             loc=["at the insured dwelling", "at {poss} home"],
             details=[
                 "The 12-year-old water heater tank rusted through and flooded the {room}.",
                 "Carpet, baseboards and stored boxes wet; plumber replaced the heater.",
             ]),
        dict(key="roof_leak", weight=3,
             short=["a roof leak during a storm", "storm-driven rain through the roof"],
             loc=["at the insured dwelling", "at {poss} home"],
             details=[
                 "Wind lifted shingles and rain came in through the roof over the {room}.",
                 "Ceiling drywall collapsed; insulation soaked and the hardwood is cupping.",
                 "Tarp placed on the roof; interior water damage is the main loss.",
             ]),
        dict(key="washing_machine", weight=2,
             short=["a washing machine hose failure", "an appliance leak"],
             loc=["at the insured dwelling", "at {poss} apartment"],
             details=[
                 "The washer supply hose split and water spread across the {room}.",
                 "Water migrated under the vinyl plank flooring into the adjacent rooms.",
             ]),
        dict(key="sewer_backup", weight=2,
             short=["a sewer backup", "a drain backup into the basement"],
             loc=["at the insured dwelling", "at {poss} home"],
             details=[
                 "Municipal sewer backed up through the floor drain into the {room}.",
                 "About two inches of gray water; carpet and drywall must be removed.",
             ]),
        dict(key="dishwasher", weight=2,
             short=["a dishwasher leak", "a slow leak under the kitchen sink"],
             loc=["at the insured dwelling", "at {poss} condo"],
             details=[
                 "A slow leak from the dishwasher line went unnoticed and rotted the subfloor.",
                 "Mold starting on the cabinet base; cabinets need to be pulled.",
             ]),
        # ambiguous: fire vocabulary, but the claim is for water damage
        dict(key="firefighting_water", weight=3,
             short=["water damage from firefighting", "water damage after a small fire"],
             loc=["at the insured dwelling", "at {poss} home"],
             details=[
                 "A small stovetop fire was put out by the fire department; fire damage itself was limited to the range hood.",
                 "Water from the fire hoses soaked the {room} and ran through to the ceiling below.",
                 "Claim is for the water damage to floors, drywall and the ceiling, not the fire damage.",
             ]),
        dict(key="sprinkler_misfire", weight=1,
             short=["an accidental sprinkler discharge", "a fire sprinkler head failure"],
             loc=["at the insured dwelling", "at {poss} condo"],
             details=[
                 "A fire sprinkler head cracked and discharged although there was no fire.",
                 "Water soaked the {room} and the unit below before the system was shut off.",
             ]),
    ],
    "property_fire": [
        dict(key="kitchen_grease", weight=4,
             short=["a kitchen grease fire", "a cooking fire"],
             loc=["at the insured dwelling", "at {poss} home"],
             details=[
                 "Oil on the stove ignited and the fire spread to the cabinets and range hood.",
                 "Heavy smoke and soot throughout the first floor; kitchen cabinets charred.",
                 "Fire department responded; the home is not habitable until smoke cleanup is done.",
             ]),
        dict(key="electrical", weight=3,
             short=["an electrical fire", "a fire that started in the wiring"],
             loc=["at the insured dwelling", "at {poss} home"],
             details=[
                 "Fire started in an outlet in the {room}; the fire marshal points to faulty wiring.",
                 "Flames burned through the wall cavity and charred the framing.",
                 "Smoke damage to contents throughout the house.",
             ]),
        dict(key="dryer_vent", weight=2,
             short=["a dryer vent fire", "a laundry room fire"],
             loc=["at the insured dwelling", "at {poss} home"],
             details=[
                 "Lint buildup in the dryer vent caught fire and spread to the laundry room ceiling.",
                 "Burned drywall and soot on contents; smoke odor throughout.",
             ]),
        dict(key="lightning", weight=2,
             short=["a lightning strike fire", "a fire after a lightning strike"],
             loc=["at the insured dwelling", "at {poss} home"],
             details=[
                 "Lightning hit the roof during the storm and started a fire in the attic.",
                 "Roof decking and rafters burned; the attic is a total loss.",
             ]),
        dict(key="wildfire_ember", weight=2,
             short=["wildfire ember damage", "a brush fire that reached the property"],
             loc=["at the insured dwelling", "at {poss} property"],
             details=[
                 "Embers from the nearby brush fire ignited the deck and the detached shed.",
                 "Shed burned to the ground; siding scorched and heavy smoke damage inside.",
             ]),
        dict(key="candle_space_heater", weight=2,
             short=["a space heater fire", "a fire started by a candle"],
             loc=["at the insured dwelling", "at {poss} apartment"],
             details=[
                 "A space heater too close to the curtains set the {room} on fire.",
                 "Furniture and carpet burned; walls blackened with soot.",
             ]),
        # ambiguous: water vocabulary (sprinklers), but the loss is the fire
        dict(key="sprinkler_contained", weight=2,
             short=["a garage fire contained by sprinklers", "a workshop fire"],
             loc=["at the insured dwelling", "at {poss} home"],
             details=[
                 "A fire started at the workbench in the garage and the sprinklers activated and contained it.",
                 "Char and soot damage to the garage walls and tools; some water on the floor from the sprinklers.",
                 "Claim is for the fire and smoke damage; the water was mopped up the same day.",
             ]),
    ],
    "theft": [
        dict(key="burglary", weight=4,
             short=["a burglary", "a break-in at the residence"],
             loc=["at the insured dwelling", "at {poss} home"],
             details=[
                 "Rear door was forced while {ref} was at work; {items} were taken.",
                 "Police report filed; no suspects yet.",
                 "Door frame damaged at the deadbolt; insured provided a list of stolen items.",
             ]),
        dict(key="package_bike", weight=2,
             short=["theft of a bicycle", "stolen property from the garage"],
             loc=["at the insured dwelling", "at {poss} home"],
             details=[
                 "Garage door was left open overnight and two e-bikes were stolen.",
                 "Neighbor's camera shows two people taking the bikes at about 3am.",
             ]),
        dict(key="travel_theft", weight=1,
             short=["theft of personal property while traveling", "a stolen luggage claim"],
             loc=["while traveling"],
             details=[
                 "{Ref}'s suitcase with {items} was stolen from the hotel lobby.",
                 "Hotel security and local police were notified.",
             ]),
        # ambiguous: vehicle vocabulary, but the loss is theft
        dict(key="vehicle_breakin", weight=4,
             short=["a vehicle break-in", "theft from a parked car"],
             loc=["{parking}"],
             details=[
                 "The passenger window of the {vehicle} was smashed; {items} taken from the car.",
                 "Damage to the vehicle is limited to the broken window; claim is mainly for the stolen items.",
                 "Police report filed for the break-in.",
             ]),
        dict(key="catalytic_converter", weight=2,
             short=["catalytic converter theft", "theft of the catalytic converter"],
             loc=["{parking}"],
             details=[
                 "Thieves cut the catalytic converter off the {vehicle} overnight.",
                 "Vehicle is very loud on start-up; exhaust pipe cut in two places.",
             ]),
        dict(key="stolen_vehicle", weight=2,
             short=["a stolen vehicle", "theft of the insured vehicle"],
             loc=["{parking}"],
             details=[
                 "{Ref}'s {vehicle} was stolen overnight; both keys are accounted for.",
                 "Vehicle not recovered after 10 days; police report filed.",
                 "Lienholder notified; no signs of forced entry at the residence.",
             ]),
    ],
    "medical_injury": [
        dict(key="slip_fall", weight=4,
             short=["a slip-and-fall injury", "a fall on an icy walkway"],
             loc=["at the insured's front steps", "on the insured's driveway", "at the insured's rental property"],
             details=[
                 "{Ref} slipped on ice and fell, suffering {injury}.",
                 "Taken to the ER by ambulance; X-rays and follow-up with orthopedics.",
                 "Guest of the insured; medical payments coverage applies.",
             ]),
        dict(key="dog_bite", weight=2,
             short=["a dog bite injury", "an injury from the insured's dog"],
             loc=["at the insured's home", "in the insured's backyard", "on a neighbor's porch"],
             details=[
                 "The insured's dog bit {ref} on the forearm; {injury} noted at urgent care.",
                 "Tetanus shot and antibiotics given; plastic surgery consult pending.",
             ]),
        dict(key="stair_fall", weight=3,
             short=["a fall down the stairs", "an injury from a fall on the stairs"],
             loc=["at the insured's rental property", "at the insured's home", "on the insured's basement stairs"],
             details=[
                 "{Ref} fell on a loose stair tread and suffered {injury}.",
                 "ER visit, CT scan and six weeks of physical therapy.",
             ]),
        dict(key="pool_trampoline", weight=2,
             short=["a backyard trampoline injury", "an injury at the pool"],
             loc=["in the insured's backyard", "at the insured's home"],
             details=[
                 "{Ref} was injured on the trampoline and suffered {injury}.",
                 "Surgery may be required; orthopedic consult scheduled.",
             ]),
        # ambiguous: collision vocabulary, but the claim is for injury / medical bills
        dict(key="auto_passenger", weight=4,
             short=["injuries to a passenger in a car accident", "bodily injury from a rear-end crash"],
             loc=["on {road}"],
             details=[
                 "{Ref} was a passenger when the car was rear-ended and suffered {injury}.",
                 "Taken to the ER by ambulance; now treating with a chiropractor.",
                 "Claim is for medical bills only; vehicle damage is handled under a separate claim.",
             ]),
        # ambiguous: fire vocabulary, but the claim is a burn injury
        dict(key="kitchen_burn", weight=2,
             short=["a burn injury", "burns from a stovetop fire"],
             loc=["at {poss} home", "at the insured's home"],
             details=[
                 "{Ref} burned {poss} hand and forearm putting out a small pan fire on the stove.",
                 "Second-degree burns treated at the burn unit; no damage to the house beyond the pan.",
             ]),
    ],
}

TYPE_LABELS = {   # capitalised labels used at the start of summaries
    "auto_collision": ["Auto collision", "Collision", "Auto accident"],
    "property_water": ["Water damage", "Water loss", "Property water"],
    "property_fire": ["Fire damage", "Fire loss", "Property fire"],
    "theft": ["Theft", "Theft loss", "Burglary/theft"],
    "medical_injury": ["Bodily injury", "Medical injury", "Injury"],
}
TYPE_PHRASES = {  # mid-sentence
    "auto_collision": ["auto collision", "collision", "vehicle accident"],
    "property_water": ["water damage", "water loss", "property water"],
    "property_fire": ["fire damage", "fire loss", "property fire"],
    "theft": ["theft", "theft loss", "stolen property"],
    "medical_injury": ["bodily injury", "medical injury", "injury"],
}

OPENINGS = [
    ["{name} (policy {policy}) called on {date} to report {short} {loc} in {town}, {st}."],
    ["FNOL {date}: {name}, policy {policy}, reports {short} {loc} in {town}, {st}."],
    ["Spoke with {name} ({policy}) regarding {short} {loc} in {town}, {st} on {date}."],
    ["On {date}, {name} of {town}, {st} reported {short} {loc}; policy {policy} was active at the time of loss."],
    ["Loss date {date}.", "{name} ({town}, {st}; {policy}) reports {short} {loc}."],
    ["Clmt {name} reports {short} {loc} in {town}, {st} on {date} under policy {policy}."],
    ["Received call from {name} on {date} re {short} {loc} in {town}, {st}.", "Policy {policy} verified."],
    ["{name}, policy {policy}, notified us of {short} {loc} in {town}, {st} that occurred {date}."],
]

AMOUNT_SENTENCES = {
    "_generic": [
        "Claimed amount is {amt}{ded}.",
        "Total claimed {amt}{ded}.",
        "Reserve set at {amt}.",
        "Estimate on file for {amt}{ded}.",
    ],
    "auto_collision": [
        "Body shop estimate {amt}{ded}.",
        "Repair estimate from {shop} came in at {amt}{ded}.",
    ],
    "property_water": [
        "Mitigation and repair estimate totals {amt}{ded}.",
        "Contractor quote for dry-out and repairs is {amt}{ded}.",
    ],
    "property_fire": [
        "Contractor estimate for repairs and smoke cleanup is {amt}{ded}.",
        "Fire restoration estimate {amt}{ded}.",
    ],
    "theft": [
        "Insured values the stolen property at {amt}{ded}.",
        "Stolen items and repairs listed at {amt} total{ded}.",
    ],
    "medical_injury": [
        "Medical bills submitted total {amt}.",
        "ER and follow-up bills to date come to {amt}.",
    ],
}

CLOSINGS = {
    "_generic": [
        "Adjuster {adj} assigned; inspection scheduled.",
        "Photos requested from the insured.",
        "Recommend payment once documents are received.",
        "File assigned to {adj} for review.",
        "Coverage confirmed, no prior losses on the policy.",
        "Will follow up with the insured in 48 hrs.",
    ],
    "auto_collision": [
        "Police report #{report} requested.",
        "OV driver info obtained; liability under review.",
        "Rental authorized for up to 10 days.",
    ],
    "property_water": [
        "Mitigation vendor dispatched for dry-out.",
        "Moisture readings taken and drying equipment placed.",
    ],
    "property_fire": [
        "Fire dept report requested.",
        "Board-up completed; insured staying with family.",
    ],
    "theft": [
        "Police report #{report} obtained.",
        "Asked the insured for receipts and serial numbers.",
    ],
    "medical_injury": [
        "Requested medical records release.",
        "Clmt treating with PT, follow-up in 2 wks.",
    ],
}

SUMMARIES = [
    "{Tlabel} claim: {name} reports {short} on {sdate} in {town}, {code}; claimed amount {samt}.",
    "{name} filed {a_tphrase} claim for {samt} after {short} on {sdate} in {town}, {code}.",
    "{Tlabel}, {samt}, {sdate}: {name} ({town}, {code}) reports {short}.",
    "{samt} {tphrase} claim from {name} of {town}, {code} for {short} on {sdate}.",
    "{name} of {town}, {code} reported {short} on {sdate}. {Tlabel} claim estimated at {samt}.",
    "Claimant {name} ({town}, {code}) reports {short} on {sdate}; {tphrase} claim, {samt}.",
]

PII_SENTENCES = [
    "Clmt callback number {phone}.",
    "Best contact: {phone} / {email}.",
    "Insured email on file: {email}.",
    "Reach {first} at {phone} after 5pm.",
    "Insured asked that updates go to {email} or {phone}.",
]
PII_SUMMARY_SUFFIX = [
    " Contact: {phone}.",
    " Claimant email {email}.",
    " Call {phone} with updates.",
]

SHORT_TEXTS = ["see file", "ok", "n/a", "pending review", "TBD", "claim noted", "see attached", "dup"]

NOTE_DATE_FORMATS = (("long", 4), ("mdy", 3), ("mdy_short", 2), ("iso", 2), ("dmy_long", 1),
                     ("abbr", 2), ("mdyy", 1), ("noyear", 1), ("weekday", 1))
SUMMARY_DATE_FORMATS = (("long", 5), ("iso", 2), ("mdy", 2), ("abbr", 1))
AMOUNT_FORMATS_WHOLE = (("comma_cents", 4), ("plain", 2), ("comma", 2), ("plain_cents", 1))
AMOUNT_FORMATS_CENTS = (("comma_cents", 3), ("plain_cents", 1))

AMOUNT_RANGES = {  # dollars
    "auto_collision": (900, 18000), "property_water": (1500, 45000),
    "property_fire": (3000, 120000), "theft": (400, 15000), "medical_injury": (600, 60000),
}
TYPE_WEIGHTS = {"auto_collision": 26, "property_water": 22, "property_fire": 16, "theft": 18,
                "medical_injury": 18}
DEDUCTIBLES = (250, 500, 1000, 2500)

AMOUNT_RE = re.compile(r"\$\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?")

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def normalize_text(s):
    """NFC + whitespace folded: how exact duplicates are defined."""
    if s is None:
        return ""
    return " ".join(unicodedata.normalize("NFC", s).split())


def parse_amounts(text):
    """All dollar amounts in ``text`` as integer cents."""
    out = []
    for m in AMOUNT_RE.finditer(text or ""):
        dollars = int(m.group(1).replace(",", ""))
        cents = int(m.group(2)) if m.group(2) else 0
        out.append(dollars * 100 + cents)
    return out


def _wchoice(rng, pairs):
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for v, w in pairs:
        x -= w
        if x < 0:
            return v
    return pairs[-1][0]


def fmt_date(d, f):
    m, day, y = d.month, d.day, d.year
    if f == "long":
        return f"{MONTHS[m - 1]} {day}, {y}"
    if f == "mdy":
        return f"{m:02d}/{day:02d}/{y}"
    if f == "mdy_short":
        return f"{m}/{day}/{y}"
    if f == "iso":
        return d.isoformat()
    if f == "dmy_long":
        return f"{day} {MONTHS[m - 1]} {y}"
    if f == "abbr":
        return f"{MONTHS_ABBR[m - 1]} {day}, {y}"
    if f == "mdyy":
        return f"{m}/{day}/{y % 100:02d}"
    if f == "noyear":
        return f"{MONTHS[m - 1]} {day}"
    if f == "weekday":
        return f"{WEEKDAYS[d.weekday()]}, {MONTHS[m - 1]} {day}"
    raise ValueError(f)


def fmt_amount(cents, f):
    dollars, c = divmod(cents, 100)
    if f == "comma_cents":
        return f"${dollars:,}.{c:02d}"
    if f == "plain_cents":
        return f"${dollars}.{c:02d}"
    if f == "comma":
        return f"${dollars:,}"
    if f == "plain":
        return f"${dollars}"
    raise ValueError(f)


def amount_column(cents):
    dollars, c = divmod(cents, 100)
    return f"{dollars:,}.{c:02d}"


def _article(word):
    return "an" if word[:1].lower() in "aeiou" else "a"


def _cap(s):
    return s[:1].upper() + s[1:]


def _word_in(word, text):
    return re.search(r"(?<![A-Za-zÀ-ÿ])" + re.escape(word) + r"(?![A-Za-zÀ-ÿ])", text,
                     re.IGNORECASE) is not None


# --------------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------------


class _Gen:
    def __init__(self, seed, n):
        self.rng = random.Random(seed)
        self.n = n
        self.used_claim_ids = {}
        self.used_policy_ids = {}
        self.scenarios = {t: list(SCENARIOS[t]) for t in CLAIM_TYPES}

    # ---- facts & style -------------------------------------------------------------------
    def new_claim_id(self):
        while True:
            cid = f"CLM-2026-{self.rng.randint(1000, 999999):06d}"
            if cid not in self.used_claim_ids:
                self.used_claim_ids[cid] = True
                return cid

    def new_policy_id(self, st):
        while True:
            pid = f"POL-{st}-{self.rng.randint(10000, 99999)}"
            if pid not in self.used_policy_ids:
                self.used_policy_ids[pid] = True
                return pid

    def new_person(self):
        first, gender = self.rng.choice(FIRST_NAMES)
        last = self.rng.choice(LAST_NAMES)
        return {"first": first, "last": last, "gender": gender}

    def new_date(self, avoid=None):
        start = _dt.date(2026, 1, 2)
        while True:
            d = start + _dt.timedelta(days=self.rng.randint(0, 330))
            if d != avoid:
                return d

    def new_amount(self, ctype, avoid=None):
        lo, hi = AMOUNT_RANGES[ctype]
        while True:
            # log-uniform-ish: more small claims than large ones
            x = lo * (hi / lo) ** (self.rng.random() ** 1.3)
            r = self.rng.random()
            if r < 0.55:
                cents = int(round(x / 50.0)) * 5000
            elif r < 0.85:
                cents = int(round(x)) * 100
            else:
                cents = int(round(x * 100))
                if cents % 100 == 0:
                    cents += self.rng.randint(1, 99)
            if avoid is None or abs(cents - avoid) >= 10000:
                return cents

    def new_customer(self):
        town, st = self.rng.choice(TOWNS)
        return {"person": self.new_person(), "town": town, "state": st,
                "policy": self.new_policy_id(st)}

    def new_facts(self, ctype, customer=None, avoid_date=None, avoid_amount=None):
        cust = customer or self.new_customer()
        return {
            "claim_id": self.new_claim_id(),
            "ctype": ctype,
            "person": cust["person"], "town": cust["town"], "state": cust["state"],
            "policy": cust["policy"],
            "date": self.new_date(avoid_date),
            "amount": self.new_amount(ctype, avoid_amount),
            "adjuster": self.rng.choice(ADJUSTERS),
            "report": f"{self.rng.randint(24, 26)}-{self.rng.randint(100000, 999999)}",
        }

    def pick_scenario(self, ctype):
        scs = self.scenarios[ctype]
        return _wchoice(self.rng, [(s, s["weight"]) for s in scs])

    def new_style(self, ctype, scenario, cents, pii_planned=False):
        rng = self.rng
        n_det_avail = len(scenario["details"])
        n_det = _wchoice(rng, [(0, 1), (1, 6), (2, 3)])
        n_det = min(n_det, n_det_avail)
        detail_idx = sorted(rng.sample(range(n_det_avail), n_det))
        opening = rng.randrange(len(OPENINGS))
        has_close = rng.random() < 0.5
        total = len(OPENINGS[opening]) + n_det + 1 + int(has_close) + int(pii_planned)
        if total > 5 and has_close:
            has_close = False
            total -= 1
        while total > 5 and detail_idx:
            detail_idx = detail_idx[:-1]
            total -= 1
        amt_pool = AMOUNT_SENTENCES["_generic"] + AMOUNT_SENTENCES[ctype]
        close_pool = CLOSINGS["_generic"] + CLOSINGS[ctype]
        whole = cents % 100 == 0
        ded = None
        if ctype != "medical_injury" and rng.random() < 0.35:
            options = [d for d in DEDUCTIBLES if d * 100 * 2 <= cents]
            if options:
                ded = (rng.choice(options), rng.randrange(2))
        return {
            "scenario": scenario["key"],
            "short_note": rng.randrange(len(scenario["short"])),
            "short_sum": rng.randrange(len(scenario["short"])),
            "loc": rng.randrange(len(scenario["loc"])),
            "opening": opening,
            "details": detail_idx,
            "amount_s": rng.randrange(len(amt_pool)),
            "closing": rng.randrange(len(close_pool)) if has_close else None,
            "date_fmt": _wchoice(rng, NOTE_DATE_FORMATS),
            "sdate_fmt": _wchoice(rng, SUMMARY_DATE_FORMATS),
            "amt_fmt": _wchoice(rng, AMOUNT_FORMATS_WHOLE if whole else AMOUNT_FORMATS_CENTS),
            "samt_fmt": "comma_cents" if rng.random() < 0.6 else None,  # None: same as note
            "state_full": rng.random() < 0.2,
            "ref": rng.randrange(3),
            "summary": rng.randrange(len(SUMMARIES)),
            "tlabel": rng.randrange(3),
            "slots": {
                "vehicle": rng.choice(VEHICLES), "road": rng.choice(ROADS),
                "parking": rng.choice(PARKING), "shop": rng.choice(SHOPS),
                "room": rng.choice(ROOMS),
                "items": rng.choice(ITEMS_CAR if scenario["key"] == "vehicle_breakin" else ITEMS_HOME),
                "injury": rng.choice(INJURIES),
            },
            "ded": ded,
            "order": None,   # sentence permutation (near duplicates only)
        }

    # ---- rendering -----------------------------------------------------------------------
    def scenario_of(self, ctype, key):
        for s in SCENARIOS[ctype]:
            if s["key"] == key:
                return s
        raise KeyError(key)

    def slot_map(self, facts, style):
        p = facts["person"]
        title = "Mr." if p["gender"] == "M" else "Ms."
        poss = "his" if p["gender"] == "M" else "her"
        if facts["ctype"] == "medical_injury":
            refs = [("The claimant", "the claimant"), ("Clmt", "clmt"),
                    (f"{title} {p['last']}", f"{title} {p['last']}")]
        else:
            refs = [("The insured", "the insured"), ("Insured", "the insured"),
                    (f"{title} {p['last']}", f"{title} {p['last']}")]
        Ref, ref = refs[style["ref"]]
        st = STATES[facts["state"]] if style["state_full"] else facts["state"]
        d = dict(style["slots"])
        d.update(Ref=Ref, ref=ref, poss=poss, name=f"{p['first']} {p['last']}", first=p["first"],
                 last=p["last"], policy=facts["policy"], town=facts["town"], st=st,
                 code=facts["state"], adj=facts["adjuster"], report=facts["report"],
                 date=fmt_date(facts["date"], style["date_fmt"]),
                 amt=fmt_amount(facts["amount"], style["amt_fmt"]))
        ded = style["ded"]
        if ded:
            dtxt = fmt_amount(ded[0] * 100, "comma" if ded[0] >= 1000 else "plain")
            d["ded"] = f"; {dtxt} deductible applies" if ded[1] == 0 else f" (less the {dtxt} deductible)"
        else:
            d["ded"] = ""
        return d

    def render_note_sentences(self, facts, style):
        ctype = facts["ctype"]
        sc = self.scenario_of(ctype, style["scenario"])
        m = self.slot_map(facts, style)
        m["loc"] = sc["loc"][style["loc"]].format_map(m)
        m["short"] = sc["short"][style["short_note"]]
        sents = [t.format_map(m) for t in OPENINGS[style["opening"]]]
        sents += [sc["details"][i].format_map(m) for i in style["details"]]
        amt_pool = AMOUNT_SENTENCES["_generic"] + AMOUNT_SENTENCES[ctype]
        sents.append(amt_pool[style["amount_s"]].format_map(m))
        if style["closing"] is not None:
            close_pool = CLOSINGS["_generic"] + CLOSINGS[ctype]
            sents.append(close_pool[style["closing"]].format_map(m))
        sents = [_cap(s) for s in sents]
        if style["order"] is not None:
            sents = [sents[i] for i in style["order"]]
        return sents

    def render_summary(self, facts, style, name=None, cents=None, code=None):
        ctype = facts["ctype"]
        sc = self.scenario_of(ctype, style["scenario"])
        p = facts["person"]
        tphrase = TYPE_PHRASES[ctype][style["tlabel"]]
        samt_fmt = style["samt_fmt"] or style["amt_fmt"]
        if (cents if cents is not None else facts["amount"]) % 100 and samt_fmt in ("plain", "comma"):
            samt_fmt = "comma_cents"
        m = {
            "Tlabel": TYPE_LABELS[ctype][style["tlabel"]],
            "tphrase": tphrase, "a_tphrase": f"{_article(tphrase)} {tphrase}",
            "name": name or f"{p['first']} {p['last']}",
            "short": sc["short"][style["short_sum"]],
            "sdate": fmt_date(facts["date"], style["sdate_fmt"]),
            "samt": fmt_amount(cents if cents is not None else facts["amount"], samt_fmt),
            "town": facts["town"], "code": code or facts["state"],
        }
        return _cap(SUMMARIES[style["summary"]].format_map(m))

    # ---- flaw helpers --------------------------------------------------------------------
    def pii(self, person):
        rng = self.rng
        area = rng.choice(["512", "737", "916", "813", "404", "518", "312", "614", "215", "919",
                           "480", "303", "206", "503", "517", "612", "865", "417", "757", "617"])
        line = f"01{rng.randint(0, 99):02d}"
        style = rng.randrange(3)
        phone = (f"({area}) 555-{line}", f"{area}-555-{line}", f"{area}.555.{line}")[style]
        f = unicodedata.normalize("NFKD", person["first"]).encode("ascii", "ignore").decode().lower()
        l = (unicodedata.normalize("NFKD", person["last"]).encode("ascii", "ignore").decode()
             .lower().replace("'", ""))
        local = rng.choice([f"{f}.{l}", f"{f[0]}{l}", f"{f}{l}{rng.randint(1, 99)}", f"{l}.{f}"])
        domain = rng.choice(["example.com", "example.net", "example.org", "mail.example.com"])
        return {"phone": phone, "email": f"{local}@{domain}", "first": person["first"]}

    def fake_name(self, facts, note):
        while True:
            first, _ = self.rng.choice(FIRST_NAMES)
            last = self.rng.choice(LAST_NAMES)
            if first == facts["person"]["first"] or last == facts["person"]["last"]:
                continue
            if _word_in(first, note) or _word_in(last, note):
                continue
            return f"{first} {last}"

    def fake_amount(self, facts, note):
        present = set(parse_amounts(note))
        cents = facts["amount"]
        dollars = cents // 100
        while True:
            mode = self.rng.randrange(3)
            if mode == 0 and len(str(dollars)) >= 3:     # transpose two digits
                s = list(str(dollars))
                i = self.rng.randrange(len(s) - 1)
                s[i], s[i + 1] = s[i + 1], s[i]
                cand = int("".join(s)) * 100 + cents % 100
            elif mode == 1:                               # order of magnitude / rounding slip
                cand = cents * 10 if self.rng.random() < 0.5 else (cents // 1000) * 100
            else:                                         # unrelated figure
                cand = self.new_amount(facts["ctype"], avoid=cents)
            if cand >= 10000 and cand not in present and abs(cand - cents) >= 5000:
                return cand

    # ---- near-duplicate edits ------------------------------------------------------------
    def typos(self, text, k):
        rng = self.rng
        words = [m for m in re.finditer(r"(?<![\w@.$#/-])[a-z]{4,}(?![\w@$#/-])", text)]
        if not words:
            return text, 0
        chosen = sorted(rng.sample(range(len(words)), min(k, len(words))), reverse=True)
        done = 0
        for wi in chosen:
            m = words[wi]
            w = m.group(0)
            for _ in range(10):
                op = rng.randrange(4)
                i = rng.randrange(1, len(w) - 1)
                if op == 0:
                    nw = w[:i] + w[i + 1] + w[i] + w[i + 2:]
                elif op == 1:
                    nw = w[:i] + w[i + 1:]
                elif op == 2:
                    nw = w[:i] + w[i] + w[i:]
                else:
                    nw = w[:i] + rng.choice("aeiourstnl") + w[i + 1:]
                if nw != w:
                    break
            else:
                continue
            text = text[:m.start()] + nw + text[m.end():]
            done += 1
        return text, done


def _pick_counts(n):
    return {f: int(round(RATES[f] * n)) for f in FLAWS}


def generate(seed=SEED, n=N_ROWS):
    """Build the data set in memory. Returns a dict with ``rows`` (data rows, COLUMNS keys,
    in output order), ``truth`` (one dict per row) and ``stats``."""
    g = _Gen(seed, n)
    rng = g.rng
    counts = _pick_counts(n)

    # ---- 1. which positions are duplicates / near duplicates / hard negatives --------------
    kinds = ["base"] * n
    special = rng.sample(range(MIN_DUP_POSITION, n),
                         counts["exact_duplicate"] + counts["near_duplicate"] + counts["hard_negative"])
    for j, pos in enumerate(special):
        if j < counts["exact_duplicate"]:
            kinds[pos] = "exact"
        elif j < counts["exact_duplicate"] + counts["near_duplicate"]:
            kinds[pos] = "near"
        else:
            kinds[pos] = "hard_negative"

    # ---- 2. content flaws on base rows (summary-side flaws are mutually exclusive) ----------
    base_pos = [i for i in range(n) if kinds[i] == "base"]
    content = {i: [] for i in base_pos}
    side = {}
    excl = ["empty", "too_short", "hallucinated_amount", "hallucinated_name", "pii_in_summary",
            "wrong_state", "copies_note"]
    picked = rng.sample(base_pos, sum(counts[f] for f in excl))
    k = 0
    for f in excl:
        for pos in picked[k:k + counts[f]]:
            content[pos].append(f)
            if f in ("empty", "too_short"):
                side[pos] = "note" if rng.random() < 0.35 else "summary"
            if f == "pii_in_summary":
                content[pos].insert(0, "pii_in_note")
        k += counts[f]
    extra_pii = counts["pii_in_note"] - counts["pii_in_summary"]
    pii_pool = [i for i in base_pos
                if not any(f in content[i] for f in ("empty", "too_short", "copies_note", "pii_in_note"))]
    for pos in rng.sample(pii_pool, extra_pii):
        content[pos].insert(0, "pii_in_note")

    # ---- 3. build rows in order ------------------------------------------------------------
    recs = []            # internal records, index = global position
    eligible = []        # positions of clean base rows (may be duplicated / resembled)
    type_pairs = [(t, TYPE_WEIGHTS[t]) for t in CLAIM_TYPES]
    for pos in range(n):
        kind = kinds[pos]
        if kind in ("base", "hard_negative"):
            flaws = list(content.get(pos, []))
            if kind == "base":
                ctype = _wchoice(rng, type_pairs)
                sc = g.pick_scenario(ctype)
                facts = g.new_facts(ctype)
                style = g.new_style(ctype, sc, facts["amount"], pii_planned="pii_in_note" in flaws)
                resembles = None
            else:
                src = recs[rng.choice(eligible)]
                ctype = src["facts"]["ctype"]
                same_customer = rng.random() < 0.5
                cust = None
                if same_customer:
                    sf = src["facts"]
                    cust = {"person": sf["person"], "town": sf["town"], "state": sf["state"],
                            "policy": sf["policy"]}
                facts = g.new_facts(ctype, cust, avoid_date=src["facts"]["date"],
                                    avoid_amount=src["facts"]["amount"])
                style = json.loads(json.dumps(src["style"]))   # deep copy, same template
                style["ded"] = src["style"]["ded"] if (src["style"]["ded"] is None or
                                                       src["style"]["ded"][0] * 200 <= facts["amount"]) else None
                if facts["amount"] % 100 and style["amt_fmt"] in ("plain", "comma"):
                    style["amt_fmt"] = "comma_cents"
                flaws = ["hard_negative"]
                resembles = src["pos"]
            rec = {"pos": pos, "kind": kind, "facts": facts, "style": style,
                   "scenario": f"{ctype}/{style['scenario']}", "flaws": flaws,
                   "duplicate_of": None, "resembles": resembles, "details": {}}
            sents = g.render_note_sentences(facts, style)
            summary = g.render_summary(facts, style)
            det = rec["details"]
            if "pii_in_note" in flaws:
                pii = g.pii(facts["person"])
                tmpl = rng.choice(PII_SENTENCES)
                sents.insert(rng.randint(1, len(sents)), tmpl.format_map(pii))
                det["pii"] = [v for key, v in (("phone", pii["phone"]), ("email", pii["email"]))
                              if "{" + key + "}" in tmpl]
                if "pii_in_summary" in flaws:
                    keys = [key for key in ("phone", "email") if pii[key] in det["pii"]]
                    suf = rng.choice([x for x in PII_SUMMARY_SUFFIX
                                      if any("{" + key + "}" in x for key in keys)])
                    summary = summary + suf.format_map(pii)
                    det["pii_summary"] = [pii[key] for key in ("phone", "email")
                                          if "{" + key + "}" in suf]
            note = " ".join(sents)
            rec["sentences"] = sents
            if "hallucinated_amount" in flaws:
                cand = g.fake_amount(facts, note)
                summary = g.render_summary(facts, style, cents=cand)
                samt_fmt = style["samt_fmt"] or style["amt_fmt"]
                if cand % 100 and samt_fmt in ("plain", "comma"):
                    samt_fmt = "comma_cents"
                det["hallucinated"] = fmt_amount(cand, samt_fmt)
            if "hallucinated_name" in flaws:
                fake = g.fake_name(facts, note)
                summary = g.render_summary(facts, style, name=fake)
                det["hallucinated"] = fake
            if "wrong_state" in flaws:
                wrong = rng.choice([c for c in STATE_CODES if c != facts["state"]])
                summary = g.render_summary(facts, style, code=wrong)
                det["summary_state"] = wrong
            if "copies_note" in flaws:
                summary = note
            if "empty" in flaws:
                if side[pos] == "note":
                    note = ""
                else:
                    summary = ""
                det["side"] = side[pos]
            if "too_short" in flaws:
                if side[pos] == "note":
                    note = rng.choice(SHORT_TEXTS)
                else:
                    summary = rng.choice(SHORT_TEXTS)
                det["side"] = side[pos]
            rec["note"], rec["summary"] = note, summary
            if not flaws or flaws == ["hard_negative"]:
                if kind == "base":
                    eligible.append(pos)
            recs.append(rec)
        else:
            src = recs[rng.choice(eligible)]
            rec = {"pos": pos, "kind": kind, "facts": src["facts"], "style": src["style"],
                   "scenario": src["scenario"], "duplicate_of": src["pos"], "resembles": None,
                   "details": {}, "sentences": src["sentences"]}
            note, summary = src["note"], src["summary"]
            if kind == "exact":
                rec["flaws"] = ["exact_duplicate"]
                if rng.random() < 0.35:
                    variant = rng.choice(["double_space", "trailing_space", "leading_space",
                                          "nfd", "summary_trailing_space"])
                    if variant == "nfd" and not any(ord(ch) > 127 for ch in note + summary):
                        variant = "double_space"
                    if variant == "double_space":
                        spaces = [i for i, ch in enumerate(note) if ch == " "]
                        i = rng.choice(spaces)
                        note = note[:i] + "  " + note[i + 1:]
                    elif variant == "trailing_space":
                        note = note + " "
                    elif variant == "leading_space":
                        note = " " + note
                    elif variant == "summary_trailing_space":
                        summary = summary + " "
                    else:
                        note = unicodedata.normalize("NFD", note)
                        summary = unicodedata.normalize("NFD", summary)
                    rec["details"]["whitespace_variant"] = variant
            else:
                rec["flaws"] = ["near_duplicate"]
                ops = []
                target = _wchoice(rng, [("note", 4), ("summary", 2), ("both", 4)])
                for _ in range(20):
                    ops = []
                    new_note, new_summary = note, summary
                    if target in ("note", "both"):
                        op = _wchoice(rng, [("reword", 4), ("reorder", 3), ("typo", 3)])
                        if op == "reorder" and len(src["sentences"]) < 3:
                            op = "reword"
                        if op == "reword":
                            st2 = json.loads(json.dumps(src["style"]))
                            ctype = src["facts"]["ctype"]
                            st2["opening"] = rng.randrange(len(OPENINGS))
                            st2["short_note"] = rng.randrange(
                                len(g.scenario_of(ctype, st2["scenario"])["short"]))
                            st2["amount_s"] = rng.randrange(
                                len(AMOUNT_SENTENCES["_generic"] + AMOUNT_SENTENCES[ctype]))
                            st2["ref"] = rng.randrange(3)
                            # keep the total sentence count within 5
                            extra = (len(OPENINGS[st2["opening"]]) + len(st2["details"]) + 1
                                     + (st2["closing"] is not None)) - 5
                            if extra > 0 and st2["closing"] is not None:
                                st2["closing"], extra = None, extra - 1
                            if extra > 0:
                                st2["details"] = st2["details"][:-extra]
                            new_note = " ".join(g.render_note_sentences(src["facts"], st2))
                        elif op == "reorder":
                            s = list(src["sentences"])
                            order = list(range(len(s)))
                            while order == list(range(len(s))):
                                rng.shuffle(order)
                            new_note = " ".join(s[i] for i in order)
                        else:
                            new_note, k_done = g.typos(note, rng.randint(1, 3))
                            op = f"typo{k_done}"
                        ops.append(f"note:{op}")
                    if target in ("summary", "both"):
                        op = _wchoice(rng, [("reword", 5), ("typo", 4)])
                        if op == "reword":
                            st2 = json.loads(json.dumps(src["style"]))
                            st2["summary"] = (st2["summary"] + rng.randint(1, len(SUMMARIES) - 1)) % len(SUMMARIES)
                            st2["tlabel"] = rng.randrange(3)
                            new_summary = g.render_summary(src["facts"], st2)
                        else:
                            new_summary, k_done = g.typos(summary, rng.randint(1, 3))
                            op = f"typo{k_done}"
                        ops.append(f"summary:{op}")
                    if (normalize_text(new_note), normalize_text(new_summary)) != \
                            (normalize_text(note), normalize_text(summary)):
                        break
                else:  # pragma: no cover - should not happen
                    raise RuntimeError("could not build a near duplicate")
                note, summary = new_note, new_summary
                rec["details"]["edits"] = ops
            rec["note"], rec["summary"] = note, summary
            recs.append(rec)

    # ---- 4. raw (noisy) labels per distinct claim -------------------------------------------
    noise_by_claim = {}
    for rec in recs:
        cid = rec["facts"]["claim_id"]
        if rec["kind"] in ("exact", "near"):
            rec["raw_label"], rec["noise"] = noise_by_claim[cid]
            continue
        ctype = rec["facts"]["ctype"]
        conf = SYSTEMATIC_CONFUSIONS.get(rec["scenario"])
        if conf and rng.random() < conf[1]:
            raw, noise = conf[0], "systematic"
        elif rng.random() < RANDOM_NOISE_RATE:
            raw, noise = rng.choice([t for t in CLAIM_TYPES if t != ctype]), "random"
        else:
            raw, noise = ctype, None
        noise_by_claim[cid] = (raw, noise)
        rec["raw_label"], rec["noise"] = raw, noise

    # ---- 5. gold rows ----------------------------------------------------------------------
    gold = set(rng.sample(range(n), int(round(GOLD_FRACTION * n))))

    # ---- 6. files & assemble -----------------------------------------------------------------
    n_csv = int(round(CSV_FRACTION * n))

    def loc(pos):
        return {"file": CSV_FILE, "row": pos + 1} if pos < n_csv else \
               {"file": JSONL_FILE, "row": pos - n_csv + 1}

    rows, truth = [], []
    for rec in recs:
        f = rec["facts"]
        flaws = [x for x in FLAWS if x in rec["flaws"]]
        quality = "REJECT" if any(x in REJECT_FLAWS for x in flaws) else "ACCEPT"
        is_gold = rec["pos"] in gold
        row = {
            "claim_id": f["claim_id"], "policy_id": f["policy"], "state": f["state"],
            "claim_date": f["date"].isoformat(), "amount": amount_column(f["amount"]),
            "adjuster": f["adjuster"], "note": rec["note"], "summary": rec["summary"],
            "claim_type": rec["raw_label"],
            "gold_claim_type": f["ctype"] if is_gold else None,
            "gold_summary_quality": quality if is_gold else None,
        }
        rows.append(row)
        t = loc(rec["pos"])
        t = {
            "file": t["file"], "row": t["row"], "claim_id": f["claim_id"],
            "true_claim_type": f["ctype"], "true_summary_quality": quality,
            "raw_label_correct": rec["raw_label"] == f["ctype"],
            "flaws": flaws,
            "duplicate_of": loc(rec["duplicate_of"]) if rec["duplicate_of"] is not None else None,
            "resembles": loc(rec["resembles"]) if rec["resembles"] is not None else None,
            "is_gold": is_gold,
            "scenario": rec["scenario"],
            "label_noise": rec["noise"],
        }
        if rec["details"]:
            t["details"] = rec["details"]
        truth.append(t)
    return {"rows": rows, "truth": truth, "n_csv": n_csv, "stats": compute_stats(rows, truth)}


# --------------------------------------------------------------------------------------------
# Stats & writing
# --------------------------------------------------------------------------------------------


def compute_stats(rows, truth):
    n = len(rows)
    flaw_counts = {f: 0 for f in FLAWS}
    for t in truth:
        for f in t["flaws"]:
            flaw_counts[f] += 1
    halluc = sum(1 for t in truth if {"hallucinated_amount", "hallucinated_name"} & set(t["flaws"]))
    cross = sum(1 for t in truth if t["duplicate_of"] and t["duplicate_of"]["file"] != t["file"])
    ws = sum(1 for t in truth if "exact_duplicate" in t["flaws"]
             and "whitespace_variant" in t.get("details", {}))
    wrong = [t for t in truth if not t["raw_label_correct"]]
    by_conf = {}
    for t, r in zip(truth, rows):
        if not t["raw_label_correct"]:
            key = f"{t['true_claim_type']}->{r['claim_type']}"
            by_conf[key] = by_conf.get(key, 0) + 1
    distinct = {}
    for t in truth:
        if "exact_duplicate" not in t["flaws"] and "near_duplicate" not in t["flaws"]:
            distinct[t["claim_id"]] = not t["raw_label_correct"]
    index = {(t["file"], t["row"]): i for i, t in enumerate(truth)}
    hn_same_policy = sum(
        1 for t, r in zip(truth, rows) if t["resembles"]
        and rows[index[(t["resembles"]["file"], t["resembles"]["row"])]]["policy_id"] == r["policy_id"])
    per_file = {}
    for t in truth:
        per_file[t["file"]] = per_file.get(t["file"], 0) + 1

    def dist(key, src):
        d = {c: 0 for c in (QUALITY_CLASSES if "quality" in key else CLAIM_TYPES)}
        for x in src:
            d[x[key]] += 1
        return d

    return {
        "n_rows": n,
        "rows_per_file": per_file,
        "distinct_claims": len(distinct),
        "flaw_counts": flaw_counts,
        "flaw_rates": {f: round(c / n, 4) for f, c in flaw_counts.items()},
        "hallucinated_any": {"count": halluc, "rate": round(halluc / n, 4)},
        "exact_duplicate_cross_file": cross_exact(truth),
        "near_duplicate_cross_file": cross - cross_exact(truth),
        "exact_duplicate_whitespace_or_unicode_variant": ws,
        "hard_negative_same_policy": hn_same_policy,
        "gold": {"count": sum(1 for t in truth if t["is_gold"]),
                 "rate": round(sum(1 for t in truth if t["is_gold"]) / n, 4),
                 "summary_quality": dist("true_summary_quality", [t for t in truth if t["is_gold"]]),
                 "claim_type": dist("true_claim_type", [t for t in truth if t["is_gold"]])},
        "true_summary_quality": dist("true_summary_quality", truth),
        "true_claim_type": dist("true_claim_type", truth),
        "raw_claim_type": dist("claim_type", rows),
        "label_noise": {
            "wrong_rows": len(wrong), "wrong_rate": round(len(wrong) / n, 4),
            "systematic_rows": sum(1 for t in wrong if t["label_noise"] == "systematic"),
            "random_rows": sum(1 for t in wrong if t["label_noise"] == "random"),
            "wrong_distinct_claims": sum(distinct.values()),
            "wrong_rate_distinct_claims": round(sum(distinct.values()) / max(1, len(distinct)), 4),
            "by_true_to_raw": dict(sorted(by_conf.items())),
        },
    }


def cross_exact(truth):
    return sum(1 for t in truth if "exact_duplicate" in t["flaws"]
               and t["duplicate_of"]["file"] != t["file"])


CURATION_YAML = """\
# Curation task for the sample insurance-claims data.
# Written by sample_data/generate.py (regenerate rather than edit by hand).
schema: instruction
fields:
  prompt: note
  response: summary
  label: claim_type          # the legacy system's (noisy) label, kept as raw_label
gold_prefix: gold_            # columns gold_<scheme> hold held-out gold labels, never shown to LFs
files:
  - claims.csv
  - claims_batch2.jsonl
schemes:
  claim_type:
    classes: [auto_collision, property_water, property_fire, theft, medical_injury]
    lf_modules: [labeling_functions.claim_type]
  summary_quality:
    classes: [ACCEPT, REJECT]
    lf_modules: [labeling_functions.summary_quality]
export:
  system_prompt: "You are a claims assistant. Summarise the adjuster's claim note in one or two sentences: claim type, amount, date and claimant."
"""


def render_files(data):
    """Return {filename: bytes} for every output file."""
    rows, n_csv = data["rows"], data["n_csv"]
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows[:n_csv]:
        w.writerow(["" if r[c] is None else r[c] for c in COLUMNS])
    jsonl = "".join(json.dumps({c: r[c] for c in COLUMNS}, ensure_ascii=False) + "\n"
                    for r in rows[n_csv:])
    truth = "".join(json.dumps(t, ensure_ascii=False, separators=(",", ":")) + "\n"
                    for t in data["truth"])
    return {
        CSV_FILE: buf.getvalue().encode("utf-8"),
        JSONL_FILE: jsonl.encode("utf-8"),
        TRUTH_FILE: truth.encode("utf-8"),
        CONFIG_FILE: CURATION_YAML.encode("utf-8"),
    }


def write(out_dir, seed=SEED, n=N_ROWS):
    data = generate(seed, n)
    os.makedirs(out_dir, exist_ok=True)
    for name, blob in render_files(data).items():
        with open(os.path.join(out_dir, name), "wb") as fh:
            fh.write(blob)
    return data


def stats(seed=SEED, n=N_ROWS):
    return {"seed": seed, **generate(seed, n)["stats"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--n", type=int, default=N_ROWS)
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--stats", action="store_true",
                    help="print realised counts/rates as JSON and write nothing")
    ap.add_argument("--update-readme", action="store_true",
                    help="rewrite the stats block of sample_data/README.md and write nothing else")
    a = ap.parse_args(argv)
    if a.stats:
        print(json.dumps(stats(a.seed, a.n), indent=2, ensure_ascii=False))
        return 0
    if a.update_readme:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "README.md")
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        block = ("<!-- stats:begin -->\n```json\n"
                 + json.dumps(stats(a.seed, a.n), indent=2, ensure_ascii=False)
                 + "\n```\n<!-- stats:end -->")
        new_text, k = re.subn(r"<!-- stats:begin -->.*?<!-- stats:end -->", lambda _m: block, text,
                              flags=re.S)
        if k != 1:
            raise SystemExit("README.md has no <!-- stats:begin --> ... <!-- stats:end --> block")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(new_text)
        return 0
    data = write(a.out, a.seed, a.n)
    print(f"wrote {len(data['rows'])} rows ({data['n_csv']} csv, "
          f"{len(data['rows']) - data['n_csv']} jsonl) to {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
