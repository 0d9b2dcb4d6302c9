import { getNamedType, isListType, isNonNullType, type GraphQLField, type GraphQLOutputType } from 'graphql';

/** Largest page any connection gives (messages); a larger `first` is cut to it. */
const LARGEST_PAGE = 200;
/** What a connection asked without `first` or `last` is counted as: the common default page. */
const UNSIZED_PAGE = 50;
/**
 * Items assumed in a plain list field (participants, attachments). An estimate: a public
 * room lists up to 200 participants, but counting every list at its longest would refuse
 * the ordinary conversation list; the page sizes and the time budget bound the rest.
 */
const LIST_ITEMS = 10;

const isList = (type: GraphQLOutputType): boolean => isListType(isNonNullType(type) ? type.ofType : type);

/**
 * What one field costs, for query cost limits (@pothos/plugin-complexity calls this for every
 * field): 1, and its selection is counted once per item it may return. A connection returns
 * up to the page it is asked for, so `users(first: 100) { … }` costs a hundred times its
 * selection; its `edges` list is then counted once. Other lists count as ten items.
 */
export function fieldCost<C>(args: Record<string, unknown>, _ctx: C, field: GraphQLField<unknown, C, Record<string, unknown>>) {
  const named = getNamedType(field.type).name;
  if (named.endsWith('Connection') && field.args.some((a) => a.name === 'first')) {
    const page = [args.first, args.last].find((n): n is number => typeof n === 'number') ?? UNSIZED_PAGE;
    return { field: 1, multiplier: Math.min(Math.max(page, 0), LARGEST_PAGE) };
  }
  if (isList(field.type)) return { field: 1, multiplier: named.endsWith('Edge') ? 1 : LIST_ITEMS };
  return 1;
}
