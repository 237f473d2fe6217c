import type { SsmState } from "./ssm-state";
import { SsmError } from "./ssm-error";
import { type Body, type Tag, readEnum, readString, readStringList, readTags } from "./request-fields";

// The ResourceType enum of the tagging operations. It has no "Activation": "You can't add tags
// to or delete tags from an existing activation" — an activation's tags are fixed at creation.
// Sources: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html
//          https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CreateActivation.html (Tags)
const RESOURCE_TYPES = [
  "Document",
  "ManagedInstance",
  "MaintenanceWindow",
  "Parameter",
  "PatchBaseline",
  "OpsItem",
  "OpsMetadata",
  "Automation",
  "Association",
] as const;

// "Most resources can have a maximum of 50 tags." (API_AddTagsToResource.html)
const MAX_TAGS_PER_RESOURCE = 50;

/** The tag list of the resource, or the documented error when it doesn't exist. */
function tagsOf(state: SsmState, body: Body): { get(): Tag[]; set(tags: Tag[]): void } {
  const resourceType = readEnum(body, "ResourceType", RESOURCE_TYPES, true);
  const resourceId = readString(body, "ResourceId", { required: true }) as string;
  if (resourceType === "ManagedInstance") {
    const node = state.managedNodes.get(resourceId);
    if (node) return { get: () => node.tags, set: (tags) => (node.tags = tags) };
  } else if (resourceType === "Parameter") {
    const parameter = state.parameters.get(resourceId);
    if (parameter) return { get: () => parameter.tags, set: (tags) => (parameter.tags = tags) };
  }
  // Other resource types aren't emulated, so no resource of theirs exists.
  throw new SsmError(
    "InvalidResourceId",
    "The resource ID isn't valid. Verify that you entered the correct ID and try again.",
  );
}

/** Adds or overwrites tags. Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AddTagsToResource.html */
export function addTagsToResource(state: SsmState, body: Body): Body {
  const resource = tagsOf(state, body);
  const added = readTags(body, "Tags", true) as Tag[];
  const merged = new Map(resource.get().map((t) => [t.Key, t.Value]));
  for (const tag of added) merged.set(tag.Key, tag.Value);
  if (merged.size > MAX_TAGS_PER_RESOURCE) {
    throw new SsmError("TooManyTagsError", `A resource can have at most ${MAX_TAGS_PER_RESOURCE} tags.`);
  }
  resource.set([...merged].map(([Key, Value]) => ({ Key, Value })));
  return {};
}

/** Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ListTagsForResource.html */
export function listTagsForResource(state: SsmState, body: Body): Body {
  return {
    TagList: tagsOf(state, body)
      .get()
      .map((t) => ({ ...t })),
  };
}

/** Source: https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_RemoveTagsFromResource.html */
export function removeTagsFromResource(state: SsmState, body: Body): Body {
  const resource = tagsOf(state, body);
  const keys = readStringList(body, "TagKeys", { required: true }) as string[];
  resource.set(resource.get().filter((t) => !keys.includes(t.Key)));
  return {};
}
