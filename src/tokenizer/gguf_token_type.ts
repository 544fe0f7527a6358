/** llama.cpp's token types (llama_token_type), as GGUF's tokenizer.ggml.token_type holds them. */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;
