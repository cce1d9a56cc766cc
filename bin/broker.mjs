#!/usr/bin/env node
// The `broker` command. Sources are TypeScript run through tsx's loader, so there is no build step to forget.
import { register } from 'tsx/esm/api';

register();
await import('../cli/src/main.ts');
