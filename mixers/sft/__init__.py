"""Zero-vision SFT: text-only chat sets (with tool use) that still teach visual work through code.

``build`` reads OpenAI / ShareGPT / Alpaca chats into one canonical form, rejects vision content
(or strips it), validates tool calls, dedupes, decontaminates, mixes by tokens and splits;
``synth`` turns image questions with known answers into tool-use trajectories whose code really
ran on the image file in a sandbox, so the samples teach visual skills without a single pixel.
"""
