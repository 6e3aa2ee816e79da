// The Core service (id 1), served by every daemon: echo for liveness checks, tests and the
// benchmark. Its request body is deliberately tiny so a small call measures the layer, not zod.
import { z } from 'zod';
import { defineService, type Handlers } from './service.js';

export const CoreService = defineService({
  id: 1,
  name: 'Core',
  methods: {
    /** Returns the message and the payload unchanged. */
    echo: {
      id: 1,
      request: z.object({
        message: z
          .string()
          .max(1 << 20)
          .default(''),
      }),
      response: z.object({ message: z.string().default('') }),
    },
  },
});

export const coreHandlers: Handlers<typeof CoreService> = {
  echo: (request, ctx) => ({ body: { message: request.message }, payload: ctx.payload }),
};
