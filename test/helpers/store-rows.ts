import { createClient } from "@libsql/client";

export async function query(url: string, sql: string, args: (string | number)[] = []) {
  const client = createClient({ url });
  try {
    return (await client.execute({ sql, args })).rows;
  } finally {
    client.close();
  }
}

/** The server writes to the store just after it logs: poll for the rows, for at most two seconds. */
export async function rowsEventually(url: string, sql: string, count = 1) {
  const deadline = Date.now() + 2000;
  for (;;) {
    const rows = await query(url, sql);
    if (rows.length >= count || Date.now() > deadline) return rows;
    await new Promise((r) => setTimeout(r, 50));
  }
}
