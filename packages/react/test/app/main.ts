/**
 * A small chat page on @chat/react, for the browser test (test/browser/react-offline.test.ts):
 * `#url=&token=&conversation=` name the node, the user and the conversation.
 */
import { createElement as h, useState } from "react";
import { createRoot } from "react-dom/client";
import { createChatClient } from "@chat/client";
import { ChatProvider, useConnection, useConversation, usePresence, useTyping } from "../../src/index.ts";

const params = new URLSearchParams(location.hash.slice(1));
const conversationId = params.get("conversation") ?? "";
const client = createChatClient({
  url: params.get("url") ?? location.origin,
  token: params.get("token") ?? "",
  socketOptions: { reconnectionDelay: 200, reconnectionDelayMax: 1000 },
});

function Chat() {
  const { state } = useConnection();
  const conv = useConversation(conversationId);
  const { typing, onInput } = useTyping(conversationId);
  const { online } = usePresence(conversationId);
  const [text, setText] = useState("");
  const [error, setError] = useState("");
  const submit = () => {
    setText("");
    onInput("");
    conv.send(text).catch((e: Error) => setError(e.message));
  };
  return h(
    "main",
    null,
    h("p", { id: "state" }, state),
    h("p", { id: "online" }, online.join(",")),
    h("p", { id: "typing" }, typing.join(",")),
    h("p", { id: "error" }, error || conv.error?.message || ""),
    h(
      "ul",
      { id: "messages" },
      conv.messages.map((m) => h("li", { key: m.id, "data-id": m.id, "data-seq": m.seq, "data-cmid": m.clientMessageId ?? "" }, `${m.senderId}: ${m.message}`)),
    ),
    h(
      "ul",
      { id: "outbox" },
      conv.outbox.map((e) => h("li", { key: e.clientMessageId, "data-state": e.state, "data-cmid": e.clientMessageId }, e.message)),
    ),
    h("input", {
      id: "text",
      value: text,
      onChange: (ev: { target: { value: string } }) => {
        setText(ev.target.value);
        onInput(ev.target.value);
      },
    }),
    h("button", { id: "send", onClick: submit }, "Send"),
  );
}

createRoot(document.getElementById("root")!).render(h(ChatProvider, { client }, h(Chat)));
