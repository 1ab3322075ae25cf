"""The words the world's questions are made of: people (with their pronouns), cities, colors, things, and the
letters of a multiple choice. Reads and writes nothing."""

NAMES = [  # (name, pronoun): passage people and shop customers
    ("Ada", "She"), ("Ben", "He"), ("Cy", "He"), ("Dan", "He"), ("Eve", "She"), ("Fay", "She"),
    ("Gus", "He"), ("Hal", "He"), ("Ivy", "She"), ("Jo", "She"), ("Kim", "She"), ("Lee", "He"),
    ("Max", "He"), ("Ned", "He"), ("Pam", "She"), ("Sam", "He"),
]  # fmt: skip
CITIES = [
    "Rome", "Oslo", "Lima", "Paris", "Cairo", "Delhi", "Tokyo", "Berlin",
    "Madrid", "Dublin", "Quito", "Seoul", "Vienna", "Athens", "Prague", "Sydney",
]  # fmt: skip
COLORS = ["red", "green", "blue", "gray", "black", "white", "pink", "brown"]
THINGS = ["apples", "pens", "cards", "eggs", "books", "coins", "stamps", "shells"]
LETTERS = "ABCD"
