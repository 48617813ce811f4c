#!/usr/bin/env python
"""Regenerate the built-in demo corpus under data/demo/.

The demo corpus is synthetic English speech: public-domain sentences rendered by
eight text-to-speech voices of Debian's flite and espeak-ng, written as 16 kHz mono
16-bit FLAC, one file per utterance, in data/demo/<voice>/<nnn>.flac.

Sentence sources (all first published before 1929, public domain in the US and, their
authors having died before 1955, in life+70 countries; the texts are on Project
Gutenberg). The sentences were typed in by hand, quoted or closely paraphrased, some
shortened, so the wording can differ slightly from the Gutenberg text:
  - Jerome K. Jerome, "Three Men in a Boat (To Say Nothing of the Dog)" (1889)
  - Arthur Conan Doyle, "The Adventures of Sherlock Holmes" (1892)
  - Lewis Carroll, "Alice's Adventures in Wonderland" (1865) and
    "Through the Looking-Glass" (1871)

Usage:
    python data/make_demo.py            # rewrite data/demo/
    python data/make_demo.py --out DIR  # write somewhere else
    python data/make_demo.py --list     # print file -> sentence, render nothing

Needs: flite and espeak-ng (apt-get install flite espeak-ng), numpy, scipy, soundfile.
The output is byte-identical from run to run for given flite/espeak-ng/libsndfile versions
(made with flite 2.2-5, espeak-ng 1.51+dfsg-10+deb12u2 on Debian 12, libsndfile 1.2.2).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

SAMPLE_RATE = 16000
PEAK = 0.9               # peak normalisation target
SILENCE_DB = -40.0       # frames quieter than this (relative to the peak frame) are silence
PAD_SECONDS = 0.10       # silence kept before and after the speech
SHARED = 3               # the first SHARED sentences are spoken by every voice (parallel data)

# (directory name, tool, voice argument, extra arguments)
VOICES = [
    ("flite_awb", "flite", "awb", ["--setf", "duration_stretch=0.95"]),    # Scottish English, male
    ("flite_rms", "flite", "rms", ["--setf", "duration_stretch=0.9"]),     # US English, male
    ("flite_slt", "flite", "slt", ["--setf", "duration_stretch=0.92"]),    # US English, female
    ("flite_kal16", "flite", "kal16", ["--setf", "duration_stretch=0.9"]), # US English, male (diphone)
    ("espeak_en-us_m3", "espeak-ng", "en-us+m3", ["-s", "175"]),           # US English, male variant m3
    ("espeak_en-gb_f2", "espeak-ng", "en-gb+f2", ["-s", "180"]),           # British English, female variant f2
    ("espeak_en-gb-scotland_f4", "espeak-ng", "en-gb-scotland+f4", ["-s", "170"]),  # Scottish, female f4
    ("espeak_en-029_m7", "espeak-ng", "en-029+m7", ["-s", "175"]),         # Caribbean English, male m7
]

# The first SHARED sentences are spoken by all voices; the rest are dealt out to the
# voices in turn, so each voice speaks different sentences from every book.
SENTENCES = [
    # --- shared by all voices (one sentence from each book) ---
    "It is a capital mistake to theorize before one has data.",
    "It is always the way with these things.",
    "Would you tell me, please, which way I ought to go from here?",
    # --- Three Men in a Boat (Jerome K. Jerome, 1889) ---
    "I like work: it fascinates me. I can sit and look at it for hours.",
    "There were four of us: George, and William Samuel Harris, and myself, and Montmorency.",
    "We were sitting in my room, smoking, and talking about how bad we were.",
    "We were all feeling seedy, and we were getting quite nervous about it.",
    "I remember going to the British Museum one day to read up the treatment for some slight ailment.",
    "The only malady I could conclude I had not got was housemaid's knee.",
    "I had walked into that reading-room a happy, healthy man. I crawled out a decrepit wreck.",
    "I felt rather hurt about this at first; it seemed somehow to be a sort of slight.",
    "He said we should have fresh air, exercise and quiet.",
    "The constant change of scene would occupy our minds.",
    "The hard work would give us a good appetite, and make us sleep well.",
    "George goes to sleep at a bank from ten to four each day, except Saturdays.",
    "Montmorency's ambition in life is to get in the way and be sworn at.",
    "It is impossible to enjoy idling thoroughly unless one has plenty of work to do.",
    "There is no fun in doing nothing when you have nothing to do.",
    "Let your boat of life be light, packed with only what you need.",
    "How good one feels when one is full, how satisfied with ourselves and with the world!",
    "You never saw such a commotion up and down a house in all your life.",
    "Uncle Podger would take off his coat, and begin.",
    "He would then send the girl out for sixpen'orth of nails.",
    "We decided that we would sleep out on fine nights, and hotel it when it was wet.",
    "Harris and I began to feel that there was something wrong with the boat.",
    "Everything has its drawbacks, as the man said when his mother-in-law died.",
    "The kettle would not boil while we were watching it.",
    "We unpacked the hamper, and found that we had forgotten the mustard.",
    "The towing-line got tangled round the rudder, and we drifted into the bank.",
    "Harris said he would cook breakfast, and we let him.",
    "We tried to open the tin with a pocket-knife, a pair of scissors, and a boat-hook.",
    "We got out at Sonning, and went for a walk round the village.",
    "It is the most fairy-like little nook on the whole river.",
    "George took out his banjo, and began to play.",
    # --- The Adventures of Sherlock Holmes (Arthur Conan Doyle, 1892) ---
    "You see, but you do not observe. The distinction is clear.",
    "It was in the latter days of September, and the equinoctial gales had set in with exceptional violence.",
    "To Sherlock Holmes she is always the woman.",
    "I have seldom heard him mention her under any other name.",
    "He was, I take it, the most perfect reasoning and observing machine that the world has seen.",
    "My marriage had drifted us away from each other.",
    "His manner was not effusive. It seldom was; but he was glad, I think, to see me.",
    "Insensibly one begins to twist facts to suit theories, instead of theories to suit facts.",
    "The note was undated, and without either signature or address.",
    "A man entered who could hardly have been less than six feet six inches in height.",
    "I had called upon my friend, Mr. Sherlock Holmes, one day in the autumn of last year.",
    "You could not possibly have come at a better time, my dear Watson.",
    "It is quite a three pipe problem, and I beg that you won't speak to me for fifty minutes.",
    "He curled himself up in his chair, with his thin knees drawn up to his hawk-like nose.",
    "My life is spent in one long effort to escape from the commonplaces of existence.",
    "Life is infinitely stranger than anything which the mind of man could invent.",
    "It has long been an axiom of mine that the little things are infinitely the most important.",
    "Depend upon it, there is nothing so unnatural as the commonplace.",
    "We were seated at breakfast one morning, my wife and I, when the maid brought in a telegram.",
    "There is nothing more deceptive than an obvious fact.",
    "You know my method. It is founded upon the observation of trifles.",
    "All day the wind had screamed and the rain had beaten against the windows.",
    "Holmes sat moodily at one side of the fireplace, cross-indexing his records of crime.",
    "The lamp in the corner threw a dim light upon the table.",
    "I had called upon my friend Sherlock Holmes upon the second morning after Christmas.",
    "It is not cold which makes me shiver. It is fear, Mr. Holmes. It is terror.",
    "When a doctor does go wrong he is the first of criminals.",
    "Violence does, in truth, recoil upon the violent.",
    "Data! Data! Data! I can't make bricks without clay.",
    "It is a little off the beaten track, is it not?",
    "I am not retained by the police to supply their deficiencies.",
    "I had no keener pleasure than in following Holmes in his professional investigations.",
    "The case has, in some respects, been not entirely devoid of interest.",
    "There is nothing so important as trifles.",
    "I am afraid that I rather give myself away when I explain.",
    "He took down a great book from the shelf and turned over the pages.",
    "We drove for at least four hours through the dark and silent streets.",
    "She was plainly but neatly dressed, with a bright, quick face.",
    "The house was a large, square block of a building, of grey lichen-blotched stone.",
    "He sprang from his chair and paced up and down the room in uncontrollable agitation.",
    "It was close upon four before the door opened, and a drunken-looking groom walked into the room.",
    "You have come in by train this morning, I see.",
    # --- Alice's Adventures in Wonderland (1865) and Through the Looking-Glass (1871) ---
    "Alice was beginning to get very tired of sitting by her sister on the bank.",
    "And what is the use of a book, thought Alice, without pictures or conversations?",
    "There was nothing so very remarkable in that.",
    "Either the well was very deep, or she fell very slowly.",
    "Down, down, down. Would the fall never come to an end?",
    "Who in the world am I? Ah, that's the great puzzle!",
    "Well! I've often seen a cat without a grin, thought Alice; but a grin without a cat!",
    "Begin at the beginning, the King said gravely, and go on till you come to the end: then stop.",
    "Everything's got a moral, if only you can find it.",
    "Take care of the sense, and the sounds will take care of themselves.",
    "Oh, you can't help that, said the Cat: we're all mad here.",
    "That depends a good deal on where you want to get to, said the Cat.",
    "I don't much care where, said Alice.",
    "Then it doesn't matter which way you go, said the Cat.",
    "How doth the little crocodile improve his shining tail.",
    "The Queen had only one way of settling all difficulties, great or small.",
    "Why, sometimes I've believed as many as six impossible things before breakfast.",
    "I can't go back to yesterday, because I was a different person then.",
    "The rabbit-hole went straight on like a tunnel for some way, and then dipped suddenly down.",
    "There were doors all round the hall, but they were all locked.",
    "Soon her eye fell on a little glass box that was lying under the table.",
    "The poor little thing sat down and cried.",
    "It was much pleasanter at home, thought poor Alice.",
    "The Caterpillar and Alice looked at each other for some time in silence.",
    "I'm afraid I can't explain myself, sir, because I'm not myself, you see.",
    "The table was a large one, but the three were all crowded together at one corner of it.",
    "Have some wine, the March Hare said in an encouraging tone.",
    "Then you should say what you mean, the March Hare went on.",
    "Twinkle, twinkle, little bat! How I wonder what you're at!",
    "A large rose-tree stood near the entrance of the garden.",
    "The chief difficulty Alice found at first was in managing her flamingo.",
    "Tut, tut, child! said the Duchess. Everything's got a moral.",
    "Will you walk a little faster? said a whiting to a snail.",
    "Beautiful soup, so rich and green, waiting in a hot tureen!",
    "The King and Queen of Hearts were seated on their throne when they arrived.",
    "You're nothing but a pack of cards!",
    "She was sitting on the bank, with her head in the lap of her sister.",
    "One thing was certain, that the white kitten had had nothing to do with it.",
    "Now, here, you see, it takes all the running you can do, to keep in the same place.",
    "When I use a word, Humpty Dumpty said, it means just what I choose it to mean.",
    "The question is, said Alice, whether you can make words mean so many different things.",
    "The time has come, the Walrus said, to talk of many things.",
    "The sun was shining on the sea, shining with all his might.",
    "It's a poor sort of memory that only works backwards, the Queen remarked.",
]


def fail(message):
    """Exit with a one-line message, no traceback."""
    sys.stderr.write("make_demo.py: %s\n" % message)
    sys.exit(1)


def check_tools():
    missing = [t for t in ("flite", "espeak-ng") if shutil.which(t) is None]
    if missing:
        fail("%s not found; install with: apt-get install flite espeak-ng" % " and ".join(missing))


def assignments():
    """[(voice index, file number, sentence)] in a fixed order."""
    jobs = []
    counters = [0] * len(VOICES)
    for v in range(len(VOICES)):
        for s in SENTENCES[:SHARED]:
            counters[v] += 1
            jobs.append((v, counters[v], s))
    for i, s in enumerate(SENTENCES[SHARED:]):
        v = i % len(VOICES)
        counters[v] += 1
        jobs.append((v, counters[v], s))
    jobs.sort(key=lambda j: (j[0], j[1]))
    return jobs


def render(voice, text, wav_path):
    _, tool, name, extra = voice
    if tool == "flite":
        cmd = ["flite", "-voice", name] + extra + ["-t", text, "-o", wav_path]
    else:
        cmd = ["espeak-ng", "-v", name] + extra + ["-w", wav_path, text]
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if result.returncode != 0 or not os.path.exists(wav_path):
        fail("%s failed (%s): %s" % (tool, name, result.stderr.decode(errors="replace").strip()[:200]))


def postprocess(wave, rate):
    import numpy as np
    from math import gcd
    from scipy.signal import resample_poly

    wave = np.asarray(wave, dtype=np.float64)
    if wave.ndim == 2:
        wave = wave.mean(axis=1)
    if rate != SAMPLE_RATE:
        g = gcd(rate, SAMPLE_RATE)
        wave = resample_poly(wave, SAMPLE_RATE // g, rate // g)
    wave = wave - wave.mean()
    # trim leading/trailing silence on 10 ms frames
    frame = SAMPLE_RATE // 100
    n = len(wave) // frame
    if n == 0:
        return None
    energy = np.sqrt(np.mean(wave[: n * frame].reshape(n, frame) ** 2, axis=1))
    if energy.max() <= 0:
        return None
    loud = np.nonzero(energy > energy.max() * 10 ** (SILENCE_DB / 20))[0]
    pad = int(PAD_SECONDS * SAMPLE_RATE)
    start = max(0, loud[0] * frame - pad)
    stop = min(len(wave), (loud[-1] + 1) * frame + pad)
    wave = wave[start:stop]
    return (wave * (PEAK / np.abs(wave).max())).astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "demo"), help="output folder (default: data/demo)")
    parser.add_argument("--list", action="store_true", help="print file -> sentence and exit")
    args = parser.parse_args()

    jobs = assignments()
    if args.list:
        for v, k, s in jobs:
            print("%s/%03d.flac\t%s" % (VOICES[v][0], k, s))
        return

    check_tools()
    try:
        import numpy  # noqa: F401
        import scipy  # noqa: F401
        import soundfile as sf
    except ImportError as e:
        fail("missing Python package (%s); install numpy, scipy and soundfile" % e.name)

    out = os.path.abspath(args.out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    stage = tempfile.mkdtemp(prefix=".demo-", dir=parent)
    try:
        total = 0
        for v, k, text in jobs:
            folder = os.path.join(stage, VOICES[v][0])
            os.makedirs(folder, exist_ok=True)
            wav = os.path.join(stage, "tmp.wav")
            render(VOICES[v], text, wav)
            data, rate = sf.read(wav, dtype="float64", always_2d=False)
            os.remove(wav)
            wave = postprocess(data, rate)
            if wave is None:
                fail("%s produced silence for: %s" % (VOICES[v][0], text))
            sf.write(os.path.join(folder, "%03d.flac" % k), wave, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
            total += len(wave)
        if os.path.exists(out):
            shutil.rmtree(out)
        os.rename(stage, out)
    finally:
        if os.path.exists(stage):
            shutil.rmtree(stage)

    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print("wrote %d files, %d voices, %.1f minutes, %.1f MB to %s"
          % (len(jobs), len(VOICES), total / SAMPLE_RATE / 60, size / 1e6, out))


if __name__ == "__main__":
    main()
