/**
 * Server-side rendering, as Next.js does it for a page that uses the hooks: in plain Node (no
 * window, document or IndexedDB), renderToString gives each hook's first state and throws nothing
 * (useSyncExternalStore needs its server snapshot there); effects, and so subscriptions, run only
 * in the browser.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createElement } from "react";
import { renderToString } from "react-dom/server";
import { createChatClient } from "@chat/client";
import { mintToken, startNode, stopAll } from "@chat/test-kit";
import { ChatProvider, useConnection, useConversation, usePresence, useTyping } from "../src/index.ts";

after(() => stopAll());

test("the hooks render on the server: no DOM needed, their first state in the HTML", async () => {
  assert.equal(typeof (globalThis as { window?: unknown }).window, "undefined", "plain Node, as a server renders");
  const node = await startNode({ RATE_LIMIT_DISABLED: "1" });
  const client = createChatClient({ url: node.url, token: await mintToken("ssr-user") });
  try {
    function View() {
      const { state } = useConnection();
      const conversation = useConversation("some-conversation");
      const { typing } = useTyping("some-conversation");
      const { online } = usePresence("some-conversation");
      return createElement("p", { "data-state": state }, `${conversation.messages.length} messages, ${conversation.outbox.length} unsent, ${typing.length} typing, ${online.length} online`);
    }
    const html = renderToString(createElement(ChatProvider, { client }, createElement(View)));
    assert.match(html, /^<p data-state="(connecting|connected|reconnecting|offline)">0 messages, 0 unsent, 0 typing, 0 online<\/p>$/, html);
  } finally {
    client.close();
  }
});
