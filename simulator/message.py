"""The assistant message a decision becomes: deterministic ids, content blocks and usage."""

import hashlib
import json

from simulator import tokens
from simulator.protocol import JsonObject, MessagesRequest
from simulator.responder import ContentOut, Decision, TextOut


def request_digest(request: MessagesRequest) -> str:
    """A stable hash of the whole request (extras included), so the same request gets the same ids."""
    canonical = json.dumps(request.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _block(content: ContentOut, digest: str, index: int) -> JsonObject:
    if isinstance(content, TextOut):
        return {"type": "text", "text": content.text}
    tool_use_id = "toolu_sim_" + hashlib.sha256(f"{digest}:{index}".encode()).hexdigest()[:24]
    return {"type": "tool_use", "id": tool_use_id, "name": content.name, "input": content.input}


def within_max_tokens(content: list[JsonObject], max_tokens: int) -> list[JsonObject] | None:
    """The answer cut where the request's `max_tokens` runs out, as a real model stops writing (a tool call that
    does not fit is left out whole); None when it fits."""
    if tokens.output_tokens(content) <= max_tokens:
        return None
    kept: list[JsonObject] = []
    room = max_tokens
    for block in content:
        if block["type"] == "text":
            kept.append({**block, "text": block["text"][: room * tokens.CHARS_PER_TOKEN]})
        elif tokens.output_tokens([block]) <= room:
            kept.append(block)
        else:
            break
        room -= tokens.output_tokens([kept[-1]])
        if room <= 0:
            break
    return kept


def build_message(request: MessagesRequest, decision: Decision) -> JsonObject:
    """The complete `message` object of a non-streaming answer (and the final state of a streamed one)."""
    digest = request_digest(request)
    content = [_block(block, digest, index) for index, block in enumerate(decision.content)]
    prompt_tokens = tokens.input_tokens(request.system, request.messages, request.tools)
    cut = within_max_tokens(content, request.max_tokens)
    stop_reason = decision.stop_reason if cut is None else "max_tokens"
    content = content if cut is None else cut
    output_tokens = tokens.output_tokens(content) if cut is None else request.max_tokens
    return {
        "id": f"msg_sim_{digest[:24]}",
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": tokens.usage(prompt_tokens, output_tokens),
    }
