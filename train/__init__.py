"""Training small LLaDA-architecture models: corpus, tokenizer, masked-diffusion pre-training and SFT."""
