"""A small OpenAI-compatible server around a local Hugging Face model, for evaluation on a CPU (or one GPU).

    .venv/rl/bin/python eval/serve_hf.py --model outputs/e2e/grpo/final --port 8011

BFCL, API-Bank, ACEBench and the held-out evaluation all talk to an OpenAI-compatible endpoint; on a GPU host that
is ``vllm serve CKPT``. Where vLLM cannot run (a laptop, CI) this serves the same three routes with
``transformers``: ``GET /v1/models``, ``POST /v1/completions`` (``prompt`` text, as bfcl-eval sends it) and
``POST /v1/chat/completions`` (``messages`` through the tokenizer's chat template). Greedy when ``temperature`` is
below 0.01 (BFCL asks for 0.001), sampling otherwise; concurrent requests are generated together in batches of up to
``--max-batch``, each stopping at the tokenizer's end-of-sequence tokens or any ``stop`` string. Binds to 127.0.0.1
by default.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("serve_hf")


class Generator:
    """Loads the model once and generates in batches: requests that arrive together (same sampling settings) are
    left-padded into one ``generate`` call by a single worker thread, so concurrent clients share the decode steps.
    """

    def __init__(self, model_path: str, device: str, max_tokens_cap: int, seed: int, max_batch: int = 8):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.tokenizer.padding_side = "left"
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).to(device).eval()
        self.device, self.max_tokens_cap, self.seed, self.max_batch = device, max_tokens_cap, seed, max_batch
        eos = {self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|im_end|>")}
        self.eos_ids = sorted(i for i in eos if isinstance(i, int) and i >= 0)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._worker, daemon=True).start()

    def chat_prompt(self, messages: list[dict[str, Any]]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(self, prompt: str, max_tokens: int, temperature: float, stop: list[str]) -> tuple[str, int, int, str]:
        """``(text, prompt_tokens, completion_tokens, finish_reason)``; blocks until the worker has answered."""
        job = {
            "prompt": prompt,
            "max_tokens": max(1, min(max_tokens, self.max_tokens_cap)),
            "stop": stop,
            "temperature": 0.0 if temperature < 0.01 else temperature,
            "done": threading.Event(),
        }
        self.queue.put(job)
        job["done"].wait()
        if "error" in job:
            raise job["error"]
        return job["result"]

    def _worker(self) -> None:
        while True:
            jobs = [self.queue.get()]
            time.sleep(0.05)  # let concurrent requests arrive
            while len(jobs) < self.max_batch:
                try:
                    jobs.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            groups: dict[tuple, list[dict]] = {}
            for job in jobs:
                groups.setdefault((job["temperature"], job["max_tokens"]), []).append(job)
            for (temperature, max_tokens), group in groups.items():
                try:
                    self._run(group, temperature, max_tokens)
                except Exception as exc:  # answer every waiting request, never kill the worker
                    for job in group:
                        job["error"] = exc
                for job in group:
                    job["done"].set()

    def _run(self, jobs: list[dict], temperature: float, max_tokens: int) -> None:
        batch = self.tokenizer(
            [j["prompt"] for j in jobs], return_tensors="pt", padding=True, add_special_tokens=False
        )
        batch = batch.to(self.device)
        greedy = temperature == 0.0
        with self.torch.no_grad():
            self.torch.manual_seed(self.seed)
            out = self.model.generate(
                **batch,
                max_new_tokens=max_tokens,
                do_sample=not greedy,
                temperature=None if greedy else temperature,
                top_p=None if greedy else 1.0,
                top_k=None if greedy else 0,
                eos_token_id=self.eos_ids or None,
                pad_token_id=self.pad_id,
            )
        width = batch["input_ids"].shape[1]
        for row, job in enumerate(jobs):
            new = out[row, width:].tolist()
            ended = next((i for i, t in enumerate(new) if t in self.eos_ids), None)
            new = new if ended is None else new[: ended + 1]
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            finish = "stop" if ended is not None else "length"
            for marker in job["stop"]:
                if marker and marker in text:
                    text, finish = text[: text.index(marker)], "stop"
            n_prompt = int(batch["attention_mask"][row].sum())
            job["result"] = (text, n_prompt, len(new), finish)


def make_handler(generator: Generator, served_name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug(fmt, *args)

        def send_json(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self.send_json(200, {"object": "list", "data": [{"id": served_name, "object": "model"}]})
            else:
                self.send_json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:  # noqa: N802
            route = self.path.rstrip("/").removeprefix("/v1")
            if route not in ("/completions", "/chat/completions"):
                self.send_json(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                chat = route == "/chat/completions"
                prompt = generator.chat_prompt(request["messages"]) if chat else request["prompt"]
                if isinstance(prompt, list):  # the completions API allows a one-element list
                    prompt = prompt[0]
                stop = request.get("stop") or []
                stop = [stop] if isinstance(stop, str) else stop
                text, n_prompt, n_out, finish = generator.generate(
                    prompt, int(request.get("max_tokens") or 512), float(request.get("temperature", 0.0)), stop
                )
            except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
                self.send_json(400, {"error": {"message": f"bad request: {type(exc).__name__}: {exc}"}})
                return
            choice = {"index": 0, "finish_reason": finish}
            choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            self.send_json(
                200,
                {
                    "id": f"cmpl-{time.time_ns()}",
                    "object": "chat.completion" if chat else "text_completion",
                    "created": int(time.time()),
                    "model": served_name,
                    "choices": [choice],
                    "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_out, "total_tokens": n_prompt + n_out},
                },
            )

    return Handler


def build_server(
    model: str,
    host: str,
    port: int,
    device: str,
    max_tokens_cap: int,
    seed: int,
    served_name: str | None = None,
    max_batch: int = 8,
) -> ThreadingHTTPServer:
    """The server, bound but not yet serving (``port=0`` picks a free port: ``server.server_address[1]``)."""
    generator = Generator(model, device, max_tokens_cap, seed, max_batch)
    return ThreadingHTTPServer((host, port), make_handler(generator, served_name or model))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    parser.add_argument("--model", required=True, help="local Hugging Face model folder")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8011, help="port (default 8011; 0 = any free port)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--served-model-name", default=None, help="name in /v1/models (default: the --model path)")
    parser.add_argument(
        "--max-tokens-cap", type=int, default=1024, help="upper bound on max_tokens of any request (default 1024)"
    )
    parser.add_argument("--seed", type=int, default=0, help="torch seed set before each generation (default 0)")
    parser.add_argument("--max-batch", type=int, default=8, help="requests generated together at most (default 8)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    server = build_server(
        args.model,
        args.host,
        args.port,
        args.device,
        args.max_tokens_cap,
        args.seed,
        args.served_model_name,
        args.max_batch,
    )
    log.info("serving %s on http://%s:%d/v1", args.model, *server.server_address[:2])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
