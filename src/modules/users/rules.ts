import { z } from 'zod';

/** Field rules shared by registration, profile updates and (later) every dialect. */
export const usernameRule = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9_.]{3,32}$/, 'must be 3 to 32 characters of a-z, 0-9, _ and .');
export const passwordRule = z.string().min(8, 'must be at least 8 characters').max(256, 'must be at most 256 characters');
export const emailRule = z.string().trim().toLowerCase().email('must be a valid email address').max(254);
export const phoneRule = z
  .string()
  .trim()
  .regex(/^\+[1-9]\d{6,14}$/, 'must be an international number in E.164 form, like +14155550123');
export const displayNameRule = z.string().trim().min(1, 'must not be empty').max(64, 'must be at most 64 characters');

const httpUrl = z
  .string()
  .trim()
  .max(2048)
  .url('must be a URL')
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL');

export const profileRules = z.object({
  username: usernameRule.nullish(),
  email: emailRule.nullish(),
  displayName: displayNameRule.nullish(),
  bio: z.string().trim().max(500, 'must be at most 500 characters').nullish(),
  website: httpUrl.nullish(),
  avatarUrl: httpUrl.nullish(),
  isPrivate: z.boolean().nullish(),
  settings: z
    .record(z.string(), z.unknown(), 'must be an object')
    .refine((s) => JSON.stringify(s).length <= 16_384, 'must be at most 16 KB of JSON')
    .nullish(),
});
