"""Real photos that ship offline with scikit-image, scikit-learn and matplotlib, with hand-written Q/A.

Every question and answer below was written by hand after looking at the image (as a teacher
would), together with its interaction styles and reference capability ratings (0-5). Some entries
carry a plausible wrong answer, used to plant ``wrong_answer`` defects. Images are stored at most
256 px on the long side (JPEG quality 85, or PNG for line art and text).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from kit.pools.imaging import fit, save_jpeg, save_png
from kit.pools.labels import ratings as r
from kit.pools.labels import styles
from kit.pools.sample import Sample, conversation

SOURCE = "photos"
MC = "Answer with the option's letter from the given choices directly."

# photo name -> (package it ships with, file format in data_samples)
PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "jpg"), "chelsea": ("skimage", "jpg"), "coffee": ("skimage", "jpg"),
    "rocket": ("skimage", "jpg"), "hubble_deep_field": ("skimage", "jpg"),
    "immunohistochemistry": ("skimage", "jpg"), "retina": ("skimage", "jpg"),
    "stereo_motorcycle": ("skimage", "jpg"), "stereo_motorcycle_pair": ("skimage", "jpg"),
    "camera": ("skimage", "jpg"), "coins": ("skimage", "jpg"), "horse": ("skimage", "png"),
    "moon": ("skimage", "jpg"), "page": ("skimage", "png"), "text": ("skimage", "png"),
    "clock": ("skimage", "jpg"), "brick": ("skimage", "jpg"), "grass": ("skimage", "jpg"),
    "gravel": ("skimage", "jpg"), "cell": ("skimage", "jpg"), "checkerboard": ("skimage", "png"),
    "colorwheel": ("skimage", "jpg"), "logo": ("skimage", "jpg"),
    "china": ("sklearn", "jpg"), "flower": ("sklearn", "jpg"), "grace_hopper": ("matplotlib", "jpg"),
}


# Questions whose answer holds for many of the photos (colour or grayscale): a mismatch planted inside
# the photos source never swaps their image, so a swapped photo always contradicts the conversation.
PORTABLE_QUESTIONS: tuple[str, ...] = ("Is this a color photograph?", "Is this a color image?")


def subject(photo: str) -> str:
    """The photographed subject of a photo name (the stereo pair and its left view are one subject)."""
    return photo.removesuffix("_pair")


def load_photo(name: str):
    """The full-size photo as a PIL image (RGB, or L for grayscale sources)."""
    from PIL import Image

    package, _ = PHOTOS[name]
    if package == "skimage":
        import skimage.data

        if name == "stereo_motorcycle_pair":
            left, right, _ = skimage.data.stereo_motorcycle()
            gap = np.full((left.shape[0], 16, 3), 255, dtype=np.uint8)
            return Image.fromarray(np.concatenate([left, gap, right], axis=1))
        arr = getattr(skimage.data, name)()
        if name == "stereo_motorcycle":
            arr = arr[0]
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        im = Image.fromarray(arr)
        if im.mode == "RGBA":  # the logo: flatten onto white
            flat = Image.new("RGB", im.size, (255, 255, 255))
            flat.paste(im, mask=im.getchannel("A"))
            im = flat
        return im
    if package == "sklearn":
        from sklearn.datasets import load_sample_image

        return Image.fromarray(load_sample_image(f"{name}.jpg"))
    if package == "matplotlib":
        from matplotlib import cbook

        with Image.open(cbook.get_sample_data(f"{name}.jpg", asfileobj=False)) as im:
            return im.convert("RGB")
    raise KeyError(name)


def write_photo(name: str, images_dir: Path) -> str:
    """Write the resized photo once; return its path relative to ``images_dir``."""
    _, fmt = PHOTOS[name]
    rel = f"{SOURCE}/{name}.{fmt}"
    dest = images_dir / rel
    if not dest.exists():
        im = fit(load_photo(name))
        (save_png if fmt == "png" else save_jpeg)(im, dest)
    return rel


def cell_bbox() -> tuple[float, float, float, float]:
    """Normalised bounding box of the cell in skimage's ``cell`` image (bright blob > mean + 3 sd)."""
    import skimage.data
    from skimage import measure

    img = skimage.data.cell().astype(float)
    mask = img > img.mean() + 3 * img.std()
    region = max(measure.regionprops(measure.label(mask)), key=lambda p: p.area)
    y1, x1, y2, x2 = region.bbox
    h, w = img.shape
    return round(x1 / w, 2), round(y1 / h, 2), round(x2 / w, 2), round(y2 / h, 2)


@dataclass(frozen=True)
class QA:
    """One hand-written conversation about a photo."""

    photo: str
    styles: str
    ratings: dict
    turns: tuple[str, ...]
    wrong: str | None = None


def _qa(photo, style_spec, rating, *turns, wrong=None) -> QA:
    return QA(photo, style_spec, rating, tuple(turns), wrong)


def _mc(question: str, options: list[str]) -> str:
    return "\n".join([question] + [f"{'ABCD'[k]}. {o}" for k, o in enumerate(options)] + [MC])


# The answer of the cell's bounding-box question, measured from the image when the table is read
# (:func:`qa_table`, via :func:`cell_bbox`) so that importing this module stays cheap.
CELL_BBOX = "<the cell's bounding box, measured by cell_bbox()>"

# All hand-written photo conversations (truth, styles and reference ratings), in build order.
QA_TABLE: tuple[QA, ...] = (
    # --- astronaut (NASA portrait of Eileen Collins)
    _qa("astronaut", "short", r(scene=3, attribute=2, language=2, activity=1),
        "Describe the image briefly.",
        "A smiling astronaut in an orange flight suit poses between an American flag and a model "
        "of the space shuttle, with a black helmet in the lower right corner.",
        wrong="A smiling pilot in a green flight suit poses in front of a fighter jet on a runway."),
    _qa("astronaut", "word", r(attribute=3, finegrained=1),
        "What color is the suit she is wearing?", "Orange.", wrong="Blue."),
    _qa("astronaut", "word", r(spatial=3, scene=1, finegrained=1),
        "What is on the left side of the picture, behind her?", "An American flag."),
    _qa("astronaut", "short", r(humanities=4, finegrained=3, stem=1),
        "This is an official NASA portrait. Who is she, and what is she known for?",
        "She is Eileen Collins, an American astronaut. She was the first woman to pilot a space "
        "shuttle (STS-63, 1995) and later the first woman to command one (STS-93, 1999)."),
    _qa("astronaut", "mc", r(finegrained=2, scene=1, spatial=1),
        _mc("What is the model standing on the right side of the picture?",
            ["A space shuttle", "A passenger airliner", "A submarine", "A hot-air balloon"]), "A"),
    # --- chelsea (cat)
    _qa("chelsea", "word", r(finegrained=2, scene=1),
        "What animal is in the photo?", "A cat.", wrong="A dog."),
    _qa("chelsea", "word", r(attribute=3, finegrained=2),
        "What color are the cat's eyes?", "Yellowish green.", wrong="Blue."),
    _qa("chelsea", "detailed", r(attribute=3, finegrained=3, scene=1, language=3),
        "Describe the cat in detail.",
        "The photo is a close-up of a short-haired tabby cat's face. Its fur mixes light brown, "
        "tan and cream, with darker stripes on the forehead and long white whiskers on the muzzle. "
        "It has large yellowish-green eyes with black pupils and a small pinkish-orange nose. The "
        "background is an out-of-focus, light-colored indoor room."),
    _qa("chelsea", "yn", r(scene=1, attribute=2, causal=1),
        "Is the background in sharp focus?",
        "No. The background is blurred, which keeps the attention on the cat's face."),
    # --- coffee
    _qa("coffee", "word", r(finegrained=3, scene=1),
        "What drink is in the cup?", "Espresso, with a layer of crema on top.",
        wrong="Hot chocolate with whipped cream."),
    _qa("coffee", "word", r(spatial=4, finegrained=1),
        "Where is the spoon relative to the cup?", "To the right of the cup, resting on the saucer.",
        wrong="To the left of the cup, lying on the table."),
    _qa("coffee", "mc", r(attribute=2, scene=1, finegrained=1),
        _mc("What is the table surface made of?", ["Glass", "Wood", "Marble", "Metal"]), "B"),
    _qa("coffee", "short", r(scene=3, attribute=2, language=2),
        "Describe the image in one sentence.",
        "An espresso in a white-lined, red-brown cup on a matching saucer with a silver spoon, "
        "standing on a wooden table."),
    # --- rocket (Falcon 9 with DSCOVR on the launch pad)
    _qa("rocket", "short", r(scene=3, activity=2, language=1),
        "What is happening in this picture?",
        "A white rocket stands upright on its launch pad at dusk, ready for launch, surrounded by "
        "tall lattice towers and bright floodlights."),
    _qa("rocket", "word", r(finegrained=3, spatial=2),
        "How many tall lattice towers stand around the rocket?",
        "Four: two wide ones at the left and right edges and two thinner ones closer to the rocket.",
        wrong="Two: one on each side of the rocket."),
    _qa("rocket", "short", r(causal=3, stem=2, scene=1),
        "Why do tall towers stand around the launch pad?",
        "They are lightning-protection towers: being taller than the rocket, they catch lightning "
        "strikes and lead them to the ground instead of the vehicle."),
    _qa("rocket", "yn", r(scene=2, causal=2),
        "Is it the middle of the day in this photo?",
        "No. The sky is deep blue and the floodlights are on, so it is dusk."),
    # --- hubble_deep_field
    _qa("hubble_deep_field", "short", r(stem=4, scene=2, finegrained=1),
        "What are most of the objects in this image?",
        "Galaxies. This is the Hubble eXtreme Deep Field: nearly every smudge of light is a distant "
        "galaxy, many seen as they were billions of years ago.",
        wrong="Stars of our own galaxy, seen through a backyard telescope."),
    _qa("hubble_deep_field", "cot", r(stem=5, causal=3, logical=3, language=1),
        "A few bright objects show sharp spikes of light. What are they, and why do they look like "
        "that? Explain step by step.",
        "1. The spikes appear only around very bright, point-like sources.\n"
        "2. Distant galaxies are extended and faint, while nearby stars of our own Milky Way are "
        "point sources bright enough to show them.\n"
        "3. In a reflecting telescope like Hubble, the struts holding the secondary mirror diffract "
        "light from such point sources into spikes.\n"
        "So these are foreground stars in the Milky Way, and the spikes are diffraction spikes."),
    _qa("hubble_deep_field", "yn", r(stem=2, scene=2),
        "Is this a photograph of a single galaxy?",
        "No. It shows thousands of galaxies of many shapes, sizes and colors scattered over a black sky."),
    _qa("hubble_deep_field", "word", r(attribute=3, stem=1),
        "What colors do the objects have?", "A mix of white, bluish, yellow-orange and red."),
    # --- immunohistochemistry
    _qa("immunohistochemistry", "short", r(stem=5, attribute=2, finegrained=2),
        "This is an immunohistochemistry slide. What does the brown staining show, and what does "
        "the blue staining show?",
        "The brown color is DAB marking cells that express the target protein, here the epithelial "
        "cells lining the glands. The blue is the hematoxylin counterstain, which colors the nuclei, "
        "including those of the surrounding connective tissue that lacks the protein."),
    _qa("immunohistochemistry", "mc", r(stem=3, finegrained=3),
        _mc("What kind of tissue is shown?",
            ["Colon tissue with glands", "Bone marrow", "Skeletal muscle", "Leaf epidermis"]), "A"),
    _qa("immunohistochemistry", "word", r(attribute=3, stem=1),
        "What are the two main colors in the image?", "Brown and blue, on a pale background.",
        wrong="Green and purple."),
    # --- retina (fundus photograph of a normal left eye)
    _qa("retina", "short", r(stem=4, finegrained=2, scene=1),
        "What kind of image is this?",
        "A fundus photograph: a picture of the retina at the back of the eye, taken through the pupil."),
    _qa("retina", "word", r(spatial=3, stem=3),
        "Where is the optic disc in this image?",
        "On the left side, about halfway down: the bright yellowish spot where the blood vessels converge.",
        wrong="In the exact center, where the image is darkest."),
    _qa("retina", "cot", r(logical=3, stem=4, spatial=3),
        "Is this the left or the right eye? Reason step by step.",
        "1. The optic disc is the bright spot where the vessels enter; the macula is the darker spot "
        "in the middle.\n"
        "2. The optic disc always lies on the nasal side of the macula.\n"
        "3. In a fundus photo taken facing the patient, the nose side of a left eye appears on the "
        "left of the image.\n"
        "4. Here the optic disc is to the left of the macula.\n"
        "So this is the left eye."),
    _qa("retina", "short", r(stem=4, causal=4),
        "Why is the optic disc called the blind spot?",
        "Because it has no photoreceptors (no rods or cones): it is where the optic nerve fibers and "
        "blood vessels leave the eye, so light falling on it is not detected."),
    # --- stereo_motorcycle
    _qa("stereo_motorcycle", "word", r(attribute=3),
        "What color is the motorcycle's fuel tank?", "Red.", wrong="Black."),
    _qa("stereo_motorcycle", "short", r(scene=3, attribute=2, language=2),
        "Describe the scene briefly.",
        "A red motorcycle with a black seat stands on its side stand in a garage, in front of metal "
        "shelves holding cardboard boxes and tools."),
    _qa("stereo_motorcycle", "word", r(spatial=3),
        "Which way is the motorcycle facing, left or right?",
        "Right: its headlight and front wheel are on the right side of the image.",
        wrong="Left: its headlight and front wheel are on the left side of the image."),
    _qa("stereo_motorcycle", "yn", r(activity=2, scene=1),
        "Is anyone riding the motorcycle?", "No. It is parked on its stand and nobody is on it."),
    _qa("stereo_motorcycle_pair", "compare", r(comparative=4, stem=3, spatial=3, logical=1),
        "The two panels are the left and right images of a stereo camera. How do they differ, and "
        "why does that matter?",
        "They show the same garage scene from two cameras placed side by side, so objects are shifted "
        "horizontally between the panels. Near objects such as the motorcycle shift more than distant "
        "ones such as the shelves; this shift (disparity) is what lets depth be computed."),
    # --- camera
    _qa("camera", "short", r(activity=4, scene=1),
        "What is the man doing?",
        "He is looking through a camera mounted on a tripod, lining up a shot.",
        wrong="He is repairing a telescope on a workbench."),
    _qa("camera", "yn", r(attribute=2),
        "Is this a color photograph?", "No, it is black and white.", wrong="Yes."),
    _qa("camera", "short", r(scene=3, spatial=1),
        "Where was the photo taken?",
        "Outdoors on a wide, flat grass field under a clear sky, with buildings, including domed "
        "roofs and a tall tower, in the distance."),
    _qa("camera", "mc", r(finegrained=2, activity=1),
        _mc("What is holding the camera up?",
            ["A tripod", "A tree branch", "A car roof", "A shoulder strap"]), "A"),
    # --- coins
    _qa("coins", "cot", r(finegrained=3, logical=2, spatial=2),
        "How many coins are there? Count step by step.",
        "1. The coins are laid out in 4 rows.\n2. Each row holds 6 coins.\n3. 4 x 6 = 24.\n"
        "There are 24 coins.", wrong="1. The coins are laid out in 4 rows.\n2. Each row holds 5 coins."
        "\n3. 4 x 5 = 20.\nThere are 20 coins."),
    _qa("coins", "short", r(humanities=4, finegrained=2),
        "What period and culture do these coins most likely come from?",
        "Classical antiquity: they are ancient Greek coins, struck by hand, most showing a head in "
        "profile (gods, heroes or rulers) as is typical of Greek coinage."),
    _qa("coins", "word", r(spatial=3),
        "Are the coins scattered randomly or arranged in a grid?", "In a grid of 4 rows and 6 columns."),
    # --- horse
    _qa("horse", "word", r(finegrained=2), "What animal does the silhouette show?", "A horse.",
        wrong="A dog."),
    _qa("horse", "word", r(spatial=3), "Which direction is the horse facing?", "To the right.",
        wrong="To the left."),
    _qa("horse", "short", r(attribute=1, scene=1, language=1),
        "Describe the image.",
        "A solid black silhouette of a standing horse, seen from the side and facing right, on a "
        "plain white background."),
    _qa("horse", "yn", r(activity=3),
        "Is the horse galloping?", "No, it is standing still with all four hooves on the ground."),
    # --- moon
    _qa("moon", "short", r(stem=3, scene=2),
        "What surface is shown in this image?",
        "The surface of the Moon seen from above: gray, dusty ground dotted with impact craters."),
    _qa("moon", "short", r(causal=4, stem=4),
        "What formed the round, bowl-shaped pits?",
        "Impacts of meteoroids and asteroids. With no atmosphere or weather to erase them, the Moon "
        "keeps its impact craters for billions of years."),
    _qa("moon", "word", r(spatial=3),
        "Where is the most prominent bright, round crater?", "Near the top left of the image.",
        wrong="Near the bottom right of the image."),
    # --- page (scanned text)
    _qa("page", "word", r(ocr=4, language=1),
        "What is the heading of this page?", "Region-based segmentation",
        wrong="Edge-based segmentation"),
    _qa("page", "detailed", r(ocr=5, language=2),
        "Transcribe the text of the page.",
        "Region-based segmentation\nLet us first determine markers of the coins and the background. "
        "These markers are pixels that we can label unambiguously as either object or background. "
        "Here, the markers are found at the two extreme parts of the histogram of grey values:\n"
        ">>> markers = np.zeros_like(coins)"),
    _qa("page", "mc", r(ocr=3, stem=2, logical=2),
        _mc("What programming language does the code line at the bottom use?",
            ["Python", "Fortran", "SQL", "HTML"]), "A"),
    _qa("page", "yn", r(ocr=3, language=1),
        "Does the text talk about coins?",
        "Yes. It explains how to find markers of the coins and of the background."),
    # --- text (handwritten formulas)
    _qa("text", "word", r(attribute=2, ocr=2),
        "Is the writing in this image printed or handwritten?", "Handwritten.", wrong="Printed."),
    _qa("text", "short", r(ocr=3, stem=2),
        "What kind of content is written on the paper?",
        "Mathematical formulas: handwritten equations with equals signs, parentheses and variables "
        "such as s and t."),
    _qa("text", "short", r(causal=3, ocr=2),
        "Why would this writing be hard for OCR software to read?",
        "The paper is photographed at a steep angle, so the handwriting is slanted and foreshortened, "
        "and parts of it are out of focus."),
    # --- clock (motion blurred)
    _qa("clock", "yn", r(causal=4, attribute=1),
        "Can you read the time on the clock? Why or why not?",
        "No. The camera moved sideways while the photo was taken, so the clock is smeared by motion "
        "blur and its hands and numbers cannot be made out.",
        wrong="Yes, it shows ten past ten."),
    _qa("clock", "word", r(finegrained=2), "What object is in the center of the image?",
        "A round wall clock, blurred."),
    _qa("clock", "spec", r(attribute=2, language=2),
        "Describe the background in exactly three words.", "Plain gray wall."),
    # --- brick
    _qa("brick", "word", r(finegrained=2, scene=1), "What texture is shown?", "A brick wall.",
        wrong="A tiled roof."),
    _qa("brick", "mc", r(attribute=2, finegrained=3, spatial=1),
        _mc("How are the bricks arranged?",
            ["In a running bond, each course offset by half a brick", "In a herringbone pattern",
             "In concentric circles", "Randomly scattered"]), "A"),
    _qa("brick", "yn", r(spatial=2, causal=2),
        "Do the mortar lines look exactly parallel in the image?",
        "No. They lean and converge slightly because the wall is photographed at an angle, so "
        "perspective distorts the otherwise parallel joints."),
    # --- grass
    _qa("grass", "word", r(finegrained=2, scene=1), "What does this close-up texture show?",
        "Grass, with a few small clover-like leaves.", wrong="A pile of hay bales."),
    _qa("grass", "yn", r(attribute=2), "Is this a color image?", "No, it is grayscale."),
    _qa("grass", "mc", r(scene=2, attribute=1, causal=1),
        _mc("What would this ground feel like to walk on?",
            ["Soft and springy", "Hard and sharp", "Smooth and icy", "Loose like sand"]), "A"),
    # --- gravel
    _qa("gravel", "word", r(finegrained=3), "What material is shown?",
        "Gravel: many small, angular crushed stones.", wrong="Sand."),
    _qa("gravel", "short", r(attribute=3, finegrained=2),
        "Describe the shape of the stones.",
        "They are small, irregular and angular, with sharp edges and flat faces, like crushed rock."),
    _qa("gravel", "yn", r(attribute=1, spatial=1, finegrained=1),
        "Is there a single large rock in the image?",
        "No. The whole image is covered by many small stones of similar size."),
    # --- cell
    _qa("cell", "short", r(stem=4, finegrained=2),
        "What does the bright round object show?",
        "A single cell. This is a quantitative phase image of a cell floating in saline; the cell looks "
        "bright because it shifts the phase of light more than the surrounding liquid."),
    _qa("cell", "coord", r(spatial=4, stem=1),
        "Give the bounding box of the cell as [x1, y1, x2, y2], with coordinates normalized to the "
        "range 0 to 1 (origin at the top left).", CELL_BBOX),
    _qa("cell", "cot", r(stem=4, logical=2, data=1),
        "The pixel spacing is 0.107 micrometers and the cell is about 120 pixels wide in the original "
        "image. Estimate its diameter step by step.",
        "1. The cell spans about 120 pixels.\n2. Each pixel is 0.107 micrometers.\n"
        "3. 120 x 0.107 = 12.84 micrometers.\nThe cell is about 13 micrometers across.",
        wrong="1. The cell spans about 120 pixels.\n2. Each pixel is 0.107 micrometers.\n"
              "3. 120 / 0.107 = 1121 micrometers.\nThe cell is about 1.1 millimeters across."),
    # --- checkerboard
    _qa("checkerboard", "cot", r(logical=3, finegrained=2, spatial=2, stem=1),
        "How many squares are on the board, and how many of them are black? Think step by step.",
        "1. The board has 8 rows.\n2. Each row has 8 squares.\n3. 8 x 8 = 64 squares.\n"
        "4. The colors alternate, so exactly half are black: 64 / 2 = 32.\n"
        "There are 64 squares, and 32 of them are black."),
    _qa("checkerboard", "word", r(spatial=2, attribute=2),
        "What color is the square in the top-left corner?", "White.", wrong="Black."),
    _qa("checkerboard", "word", r(humanities=3),
        "Which board games are played on a board like this?",
        "Chess and checkers (draughts), both played on an 8 x 8 board of alternating squares."),
    # --- colorwheel
    _qa("colorwheel", "word", r(attribute=3, spatial=2),
        "Which color is at the top of the wheel?", "Red.", wrong="Green."),
    _qa("colorwheel", "short", r(stem=3, attribute=2, causal=1),
        "What color is at the center of the wheel, and why?",
        "White: saturation is zero at the center and grows toward the rim, so every hue fades to "
        "white in the middle."),
    _qa("colorwheel", "mc", r(spatial=2, attribute=2, logical=1),
        _mc("Going clockwise from red at the top, which color comes next?",
            ["Yellow", "Blue", "Magenta", "Cyan"]), "A"),
    _qa("colorwheel", "compare word", r(comparative=2, stem=2, attribute=2, spatial=1),
        "Which color lies directly opposite red on the wheel?",
        "Cyan: red is at the top and cyan at the bottom; they are complementary colors."),
    # --- logo (scikit-image)
    _qa("logo", "word", r(finegrained=2, attribute=1),
        "What letter does the white curve across the logo form?", "S."),
    _qa("logo", "word", r(attribute=3, spatial=2),
        "What are the colors of the two halves of the circle?",
        "Green in the upper left and orange in the lower right.",
        wrong="Blue in the upper left and red in the lower right."),
    _qa("logo", "word", r(finegrained=3), "What animal appears in the logo?",
        "A snake: its scaly head is drawn across both halves."),
    # --- china (Summer Palace, Beijing)
    _qa("china", "short", r(humanities=5, finegrained=4, scene=2),
        "What building is this, and where is it?",
        "The Tower of Buddhist Incense on Longevity Hill in the Summer Palace, Beijing, overlooking "
        "Kunming Lake.", wrong="The Temple of Heaven in Beijing, overlooking the Forbidden City."),
    _qa("china", "detailed", r(scene=4, attribute=3, spatial=2, language=4, humanities=1),
        "Describe the image in detail.",
        "A tall, multi-tiered tower in traditional Chinese style rises on the left half of the "
        "picture. It has red columns and railings, blue-and-green painted beams under the eaves, "
        "orange-yellow glazed roof tiles and a golden finial on top. Green trees fill the foreground "
        "and the right edge. Behind the tower a wide lake stretches to the horizon under a hazy, "
        "pale blue sky, with a small island linked by a long bridge and many small boats on the water."),
    _qa("china", "word", r(spatial=2), "Is the tower on the left or the right of the picture?",
        "On the left.", wrong="On the right."),
    _qa("china", "mc", r(humanities=4, finegrained=2),
        _mc("Which architectural tradition does the tower belong to?",
            ["Traditional Chinese", "Gothic", "Ancient Greek", "Art Deco"]), "A"),
    # --- flower (dahlia)
    _qa("flower", "word", r(finegrained=4, stem=1), "What kind of flower is this?",
        "A dahlia, of the ball (pompon) type.", wrong="A sunflower."),
    _qa("flower", "word", r(attribute=3), "What color are the petals?", "Peach-orange.",
        wrong="Deep purple."),
    _qa("flower", "yn", r(spatial=2, finegrained=2),
        "Is there more than one flower in the picture?",
        "Yes. Besides the large flower in the center, a second one is partly visible at the bottom edge."),
    _qa("flower", "short", r(causal=3, stem=1),
        "Why is the background blurred?",
        "The photo was taken with a shallow depth of field: only the flower is in focus, so the "
        "leaves behind it are blurred."),
    # --- grace_hopper (US Navy portrait)
    _qa("grace_hopper", "short", r(humanities=5, finegrained=3, stem=1),
        "Who is this, and why is she famous?",
        "Grace Hopper, a U.S. Navy officer and computer scientist. She built one of the first "
        "compilers and was a driving force behind the COBOL programming language; she retired as a "
        "rear admiral.", wrong="Ada Lovelace, who wrote the first published computer program in 1843."),
    _qa("grace_hopper", "short", r(attribute=3, finegrained=2),
        "What is she wearing?",
        "A dark navy uniform with a white shirt and black tie, ribbon bars and a name tag, an "
        "officer's cap with a gold emblem, and glasses."),
    _qa("grace_hopper", "word", r(spatial=2, scene=1),
        "What is behind her on the left?", "An American flag."),
)


def qa_table() -> list[QA]:
    """All hand-written photo conversations (truth, styles and reference ratings), the cell's bounding box
    measured from its image."""
    bbox = "[" + ", ".join(f"{v:.2f}" for v in cell_bbox()) + "]"
    return [replace(qa, ratings=dict(qa.ratings), turns=tuple(bbox if t == CELL_BBOX else t for t in qa.turns))
            for qa in QA_TABLE]


def samples(images_dir: Path) -> list[Sample]:
    """All clean photo samples (writes the resized photos)."""
    out = []
    counts: dict[str, int] = {}
    for qa in qa_table():
        k = counts[qa.photo] = counts.get(qa.photo, 0) + 1
        out.append(Sample(
            key=f"{SOURCE}/{qa.photo}/{k}", image=write_photo(qa.photo, images_dir),
            conversations=conversation(*qa.turns), source=SOURCE, styles=styles(qa.styles),
            ratings=dict(qa.ratings), wrong=qa.wrong, meta={"photo": qa.photo}))
    return out
