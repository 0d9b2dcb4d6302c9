import type pg from 'pg';
import type { Message, MessageKind } from '../../generated/prisma/client.ts';
import { membersOf } from '../conversations/service.ts';

export interface NewMessage {
  conversationId: number;
  senderId: number;
  kind: MessageKind;
  content: string;
  replyToId: number | null;
  clientId: string | null;
  fileIds: number[];
}

/**
 * A stored message, with who is a member once it is stored (null for a public room, whose
 * traffic goes to those who watch it while members of the others hear of it everywhere).
 */
export type StoredMessage = Message & { memberIds: number[] | null };

/** How many messages one statement writes at most. */
const MAX_BATCH = 200;

/** Timestamps are stored as UTC in columns without a time zone (Prisma's convention). */
const UTC_NOW = `(now() AT TIME ZONE 'UTC')`;

/**
 * Writes messages, each only if its sender is a member of its conversation, each with its
 * `message.created` outbox event (the relay hands it to webhooks, push and MQTT). Sends that arrive
 * while a write is under way are written together by the next statement: under load one round
 * trip and one commit serve many messages, and an idle server writes a message at once.
 *
 * In one statement: the conversations' rows are locked in id order (so writers on several
 * instances cannot deadlock; NO KEY, so adding a member or a file is not held up), each
 * message gets the next `seq` of its conversation and an id drawn after the locks are held, so
 * in every conversation ids and seqs rise together in commit order and a client catching up
 * "after id N" misses nothing; then the messages, the conversations' last message and the
 * attached files are written. The foreign key from `lastMessageId` is checked at the end of
 * the statement, when the messages exist. Who the members are is read after the commit: a
 * member added or removed while the statement waited for a lock is then counted right.
 */
export class MessageWriter {
  private queue: Array<{ message: NewMessage; resolve: (row: StoredMessage | undefined) => void; reject: (err: unknown) => void }> = [];
  private writing = false;

  constructor(private readonly sql: pg.Pool) {}

  /** The stored message, or undefined if the sender is not a member of the conversation. */
  write(message: NewMessage): Promise<StoredMessage | undefined> {
    return new Promise((resolve, reject) => {
      this.queue.push({ message, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        const rows = await this.insert(batch.map((b) => b.message));
        batch.forEach((b, i) => b.resolve(rows[i]));
      } catch (err) {
        if (batch.length === 1 || !isFaultOfOneMessage(err)) {
          // Anything else (the connection lost, say) may have happened after the commit:
          // writing the messages again could store them twice.
          for (const b of batch) b.reject(err);
          continue;
        }
        // One message at fault (a clientId sent twice, a reply to a message deleted meanwhile)
        // must not fail the others: the statement stored nothing, so write them one by one.
        for (const b of batch) await this.insert([b.message]).then((rows) => b.resolve(rows[0]), b.reject);
      }
    }
    this.writing = false;
  }

  /** The stored rows, in the order of `messages`; undefined where the sender is not a member. */
  private async insert(messages: NewMessage[]): Promise<Array<StoredMessage | undefined>> {
    const files = messages.flatMap((m, i) => m.fileIds.map((file) => ({ file, ord: i + 1 })));
    const { rows } = await this.sql.query<Message & { ord: string; conversationKind: string }>({
      name: 'insert-messages',
      text: `WITH input AS (
         SELECT * FROM unnest($1::int[], $2::int[], $3::"MessageKind"[], $4::text[], $5::int[], $6::text[])
           WITH ORDINALITY AS i(conv, sender, kind, content, reply, client, ord)
       ), allowed AS (
         SELECT input.* FROM input WHERE EXISTS (
           SELECT 1 FROM "Participant" p WHERE p."conversationId" = input.conv AND p."userId" = input.sender AND p."leftAt" IS NULL
         )
       ), locked AS (
         SELECT id, "lastSeq", kind FROM "Conversation" WHERE id IN (SELECT conv FROM allowed) ORDER BY id FOR NO KEY UPDATE
       ), numbered AS (
         SELECT nextval('"Message_id_seq"')::int AS id, s.* FROM (
           SELECT a.*, l."lastSeq" + row_number() OVER (PARTITION BY a.conv ORDER BY a.ord) AS seq, l.kind AS "conversationKind"
           FROM allowed a JOIN locked l ON l.id = a.conv
           ORDER BY a.conv, a.ord
         ) s
       ), m AS (
         INSERT INTO "Message" (id, "conversationId", seq, "senderId", kind, content, "replyToId", "clientId", "createdAt")
         SELECT id, conv, seq, sender, kind, content, reply, client, ${UTC_NOW} FROM numbered
         RETURNING *
       ), last AS (
         UPDATE "Conversation" c
         SET "lastSeq" = n.seq, "lastMessageId" = n.id, "lastActivityAt" = ${UTC_NOW}, "updatedAt" = ${UTC_NOW}
         FROM (SELECT DISTINCT ON (conv) conv, seq, id FROM numbered ORDER BY conv, seq DESC) n
         WHERE c.id = n.conv
       ), attached AS (
         UPDATE "File" f SET "messageId" = n.id, "conversationId" = n.conv
         FROM unnest($7::int[], $8::int[]) AS a(file, ord) JOIN numbered n ON n.ord = a.ord
         WHERE f.id = a.file
       ), recorded AS (
         INSERT INTO "OutboxEvent" (topic, type, payload, "createdAt")
         SELECT 'conversation:' || m."conversationId", 'message.created', jsonb_build_object(
                  'id', m.id, 'conversationId', m."conversationId", 'seq', m.seq, 'senderId', m."senderId", 'kind', m.kind,
                  'content', m.content, 'replyToId', m."replyToId", 'clientId', m."clientId",
                  'createdAt', to_char(m."createdAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
                ${UTC_NOW}
         FROM m ORDER BY m.id
       )
       SELECT m.*, n.ord, n."conversationKind" FROM m JOIN numbered n ON n.id = m.id`,
      values: [
        messages.map((m) => m.conversationId),
        messages.map((m) => m.senderId),
        messages.map((m) => m.kind),
        messages.map((m) => m.content),
        messages.map((m) => m.replyToId),
        messages.map((m) => m.clientId),
        files.map((f) => f.file),
        files.map((f) => f.ord),
      ],
    });
    const members = await membersOf(this.sql, rows.filter((r) => r.conversationKind !== 'PUBLIC').map((r) => r.conversationId));
    const byOrd = new Map(
      rows.map(({ ord, conversationKind: _kind, ...row }) => [Number(ord), { memberIds: members.get(row.conversationId) ?? null, ...row }]),
    );
    return messages.map((_, i) => byOrd.get(i + 1));
  }
}

/**
 * Errors that name one message's data (a constraint it breaks, a value the column refuses):
 * the statement stored nothing, and the other messages of the batch can be written alone.
 */
function isFaultOfOneMessage(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('23') || code.startsWith('22'));
}

declare module '../../services/services.ts' {
  interface Services {
    /** The one way a message is stored. */
    messageWriter: MessageWriter;
  }
}
